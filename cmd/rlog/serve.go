package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"rlog/remotelog"
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
go through it (over a socket in the repo), and their publishes reach followers at once.`,
		Example: `  rlog serve                                   # http://127.0.0.1:8080
  rlog serve --listen 0.0.0.0:8080             # for other machines
  rlog fetch k51qzi5uqu5d... --from http://127.0.0.1:8080 --repo ~/reader`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer repo.Close()
			if repo.Config.Backend == "kubo" {
				return usagef("this repo publishes to Kubo: its daemon's gateway serves the log")
			}
			w, err := repo.Writer(nil, nil)
			if err != nil {
				return err
			}
			defer w.Close()
			srv := remotelog.NewServer(repo, w, nil)
			gw, err := srv.Gateway()
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			cl, err := remotelog.ListenControl(repo.Dir)
			if err != nil {
				ln.Close()
				return err
			}
			defer os.Remove(remotelog.ControlSocket(repo.Dir))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			public := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
			public.RegisterOnShutdown(srv.CloseStreams) // followers: at once
			control := srv.ControlServer()
			errc := make(chan error, 2)
			go func() { errc <- public.Serve(ln) }()
			go func() { errc <- control.Serve(cl) }()
			fmt.Fprintf(a.stdout, "serving %s at http://%s\n", repo.Name(), ln.Addr())
			select {
			case <-ctx.Done():
			case err = <-errc:
			}
			// Requests under way get a few seconds to finish; event streams
			// end at once.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, hs := range []*http.Server{public, control} {
				if serr := hs.Shutdown(sctx); serr != nil {
					fmt.Fprintf(a.stderr, "rlog: serve: shutdown: %v; closing the connections left\n", serr)
					hs.Close()
				}
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	return cmd
}
