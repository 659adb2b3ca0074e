package main

import (
	"time"

	"github.com/spf13/cobra"
)

func (a *app) keepCmd() *cobra.Command {
	var froms []string
	var listen, backup string
	var endpoint *string
	var republish, minInterval, maxInterval time.Duration
	cmd := &cobra.Command{
		Use:   "keep NAME... --from SOURCE",
		Short: "Keep logs readable while their writers are offline",
		Long: `The always-on helper a mostly-offline writer relies on. For each log NAME, keep follows
it from SOURCE and holds every block of it in this repo's backend, then its newest
signed record: in a Kubo daemon (rlog init --kubo, or --api) it pins each log's head and
stores the record, which Kubo then serves to the network; in the embedded store it holds
them. The record is put again every --republish, so it never expires from the routing
system while the writer is away for weeks. keep cannot sign anything: it only keeps what
the writer signed, and it stores a record only after every block it points at. Stopped
at any point (Ctrl-C, SIGTERM, a crash), it resumes where it was; on start it checks
that the log of the record it holds is complete here and fetches what is missing from
SOURCE.

With --listen ADDR it serves the kept logs as 'rlog serve' does (embedded store): a
trustless gateway, head events at /rlog/v1/events, Delegated Routing V1 for their
records, the same request limits (no CAR with dups=y, CAR responses cut at 64 MiB), and
at / the web page that reads a log and verifies it in a browser (docs/WEB.md). All of
it: docs/CLI.md, "What rlog serve and rlog keep --listen answer".

With --backup s3://BUCKET/PREFIX, every record keep stores is then backed up to the
bucket, incrementally, as 'rlog backup -o s3://…' does (a failed push is reported and
done again at the next publish).

` + s3Help,
		Example: `  rlog keep k51qzi5uqu5d... --from http://writer:8080 --listen 0.0.0.0:8081
  rlog keep k51qzi5uqu5d... k51qzi5uqu5e... --from kubo: --api /ip4/127.0.0.1/tcp/5001
  rlog keep k51qzi5uqu5d... --from http://writer:8080 --backup s3://backups/rlog`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(froms) == 0 {
				return usagef("give --from SOURCE: where the logs are read (a gateway, a repo folder, kubo:...)")
			}
			return a.runNode(cmd, nodeFlags{keep: args, keepFrom: froms, serve: listen, republish: republish, minIntv: minInterval, maxIntv: maxInterval, keepBackup: backup, s3Endpoint: *endpoint})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&froms, "from", nil, fromHelp+fromsHelp)
	f.StringVar(&backup, "backup", "", "also back every kept record's log up to this s3://BUCKET/PREFIX")
	endpoint = s3FlagOn(cmd)
	f.StringVar(&listen, "listen", "", "also serve the kept logs as a gateway at this address (embedded store)")
	f.DurationVar(&republish, "republish", 12*time.Hour, "how often to put each newest record again")
	f.DurationVar(&minInterval, "min-interval", time.Second, "shortest time between looks when polling")
	f.DurationVar(&maxInterval, "max-interval", time.Minute, "longest time between looks while nothing changes")
	a.apiFlagOn(cmd)
	a.retriesFlagOn(cmd)
	return cmd
}
