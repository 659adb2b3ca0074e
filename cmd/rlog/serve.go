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
/rlog/v1/events streams new heads as server-sent events, so followers hear of a publish
at once.

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
