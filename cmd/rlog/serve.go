package main

import (
	"github.com/spf13/cobra"
)

func (a *app) serveCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve this repo as a trustless IPFS gateway, with pushed head events",
		Long: `Serve the repo's embedded store as an IPFS trustless gateway: raw blocks
(?format=raw), CAR responses (?format=car, dag-scope), and IPNS records
(?format=ipns-record), with the gateway conventions' caching headers (immutable for
/ipfs/, the record's TTL for /ipns/). Any IPFS tool that reads a trustless gateway reads
the log; 'rlog fetch NAME --from http://HOST:PORT' and 'rlog follow' do too.

Beside it, on the same address:
  /                      a read-only web page: give it a log's name, it shows the newest
                         messages, every block, record and message id verified in the
                         browser, and new ones as they are published (docs/WEB.md)
  /rlog/v1/events        new heads as server-sent events, so followers and the page
                         hear of a publish at once
  /routing/v1/ipns/NAME  Delegated Routing V1: the name's signed record
  /routing/v1/providers/CID  this server, for a block held here

Limits, so no request holds the server: a CAR with dups=y is refused (406), a CAR
response stops at 64 MiB (a truncated stream, never a short CAR), a path of more than
32 segments is refused (400). All of it: docs/CLI.md, "What rlog serve and rlog keep
--listen answer".

While it runs, serve owns the repo: 'rlog append' and 'rlog publish' in the same repo
go through it (over a socket in the repo), and their publishes reach followers at once;
log, fetch, check, backup and the other commands run in it too. 'rlog run --serve'
also syncs, keeps and follows in the same process.`,
		Example: `  rlog serve                                   # http://127.0.0.1:8080
  rlog serve --listen 0.0.0.0:8080             # for other machines
  rlog fetch k51qzi5uqu5d... --from http://127.0.0.1:8080 --repo ~/reader`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runNode(cmd, nodeFlags{serve: listen})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	return cmd
}
