package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"rlog/namesys"
	"rlog/remotelog"
)

func (a *app) keepCmd() *cobra.Command {
	var from, listen, backup string
	var endpoint *string
	var republish, minInterval, maxInterval time.Duration
	cmd := &cobra.Command{
		Use:   "keep NAME... --from SOURCE",
		Short: "Keep logs readable while their writers are offline",
		Long: `The always-on helper a mostly-offline writer relies on. For each log NAME, keep follows
it from SOURCE and holds every block of it in this repo's backend, then its newest
signed record: in a Kubo daemon (rlog init --kubo, or --api) it pins each log's head and
stores the record, which Kubo then serves to the network; in the embedded store it holds
them, and --listen serves them as a trustless gateway with pushed head events. The
record is put again every --republish, so it never expires from the routing system
while the writer is away for weeks. keep cannot sign anything: it only keeps what the
writer signed, and it stores a record only after every block it points at. Stopped at
any point (Ctrl-C, SIGTERM, a crash), it resumes where it was; on start it checks that
the log of the record it holds is complete here and fetches what is missing from SOURCE.

With --backup s3://BUCKET/PREFIX, every record keep stores is then backed up to the
bucket, incrementally, as 'rlog backup -o s3://…' does (a failed push is reported and
done again at the next publish).

` + s3Help,
		Example: `  rlog keep k51qzi5uqu5d... --from http://writer:8080 --listen 0.0.0.0:8081
  rlog keep k51qzi5uqu5d... k51qzi5uqu5e... --from kubo: --api /ip4/127.0.0.1/tcp/5001
  rlog keep k51qzi5uqu5d... --from http://writer:8080 --backup s3://backups/rlog`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []ipns.Name
			for _, a := range args {
				n, err := parseName(a)
				if err != nil {
					return err
				}
				names = append(names, n)
			}
			if from == "" {
				return usagef("give --from SOURCE: where the logs are read (a gateway, a repo folder, kubo:...)")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			repo, err := a.openOrInitRepo(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			b, release, err := a.backend(ctx, repo)
			if err != nil {
				return err
			}
			defer release()
			target := remotelog.KeepTarget{Store: repo.Store(), Names: repo.Names()}
			if b != nil {
				target = remotelog.KeepTarget{Store: b.Store, Names: b.Names}
			}
			src, err := a.openSource(ctx, from)
			if err != nil {
				return err
			}
			defer src.Close()
			var mu sync.Mutex // one line at a time
			say := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(a.stdout, format, args...)
			}
			push, err := a.keepBackup(ctx, backup, *endpoint, target.Store, say)
			if err != nil {
				return err
			}
			var srv *remotelog.Server
			if listen != "" {
				if b != nil {
					return usagef("--listen serves the embedded store; this repo keeps logs in Kubo, whose gateway serves them")
				}
				srv = remotelog.NewServer(repo, nil, nil)
				gw, err := srv.Gateway()
				if err != nil {
					return err
				}
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("listen on %s: %w", listen, err)
				}
				hs := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
				go hs.Serve(ln)
				defer hs.Close()
				fmt.Fprintf(a.stdout, "serving kept logs at http://%s\n", ln.Addr())
			}
			cursors := remotelog.KeepCursors(repo.Dir)
			var wg sync.WaitGroup
			errs := make(chan error, len(names))
			for _, name := range names {
				cur, err := cursors.Get(name)
				if err != nil {
					return err
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := remotelog.Keep(ctx, src, name, cur, target, remotelog.KeepOptions{
						Republish: republish,
						Follow: remotelog.FollowOptions{
							MinInterval: minInterval, MaxInterval: maxInterval,
							Save: func(c remotelog.Cursor) error { return cursors.Save(name, c) },
							Status: func(s remotelog.FollowStatus) {
								if s.Err != nil {
									mu.Lock()
									fmt.Fprintf(a.stderr, "%s: source unavailable: %s; trying again in %s\n", name, a.brief(s.Err), s.Wait)
									mu.Unlock()
								}
							},
						},
						Kept: func(rec *namesys.Record) {
							mu.Lock()
							fmt.Fprintf(a.stdout, "kept %s: record sequence %d, head %s\n", name, rec.Sequence, rec.Value)
							mu.Unlock()
							if srv != nil {
								srv.Announce(remotelog.HeadEvent{Name: name.String(), Head: rec.Value.String(), RecordSeq: rec.Sequence})
							}
							if push != nil {
								push(rec)
							}
						},
					})
					if err != nil && !errors.Is(err, context.Canceled) {
						errs <- explain("keep "+name.String(), err)
						stop()
					}
				}()
			}
			wg.Wait()
			close(errs)
			return <-errs
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", fromHelp)
	f.StringVar(&backup, "backup", "", "also back every kept record's log up to this s3://BUCKET/PREFIX")
	endpoint = s3FlagOn(cmd)
	f.StringVar(&listen, "listen", "", "also serve the kept logs as a gateway at this address (embedded store)")
	f.DurationVar(&republish, "republish", 12*time.Hour, "how often to put each newest record again")
	f.DurationVar(&minInterval, "min-interval", time.Second, "shortest time between looks when polling")
	f.DurationVar(&maxInterval, "max-interval", time.Minute, "longest time between looks while nothing changes")
	a.apiFlagOn(cmd)
	return cmd
}
