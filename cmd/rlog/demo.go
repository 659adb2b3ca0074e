package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) demoCmd() *cobra.Command {
	var rounds, perRound int
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole job on the embedded store in a temporary directory",
		Long: `Create a writer repo and a reader repo in a temporary directory. In each round the
writer appends messages and publishes; the reader, reading the writer's repo as its
source, catches up on exactly what is new. Prints what happened: messages, pages,
rounds of fetches, bytes and time. Nothing outside the temporary directory is used.`,
		Example: `  rlog demo
  rlog demo --rounds 10 --messages 500 --keep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tmp, err := os.MkdirTemp("", "rlog-demo-")
			if err != nil {
				return err
			}
			if keep {
				fmt.Fprintf(a.stdout, "repos kept in %s\n", tmp)
			} else {
				defer os.RemoveAll(tmp)
			}
			wdir, rdir := filepath.Join(tmp, "writer"), filepath.Join(tmp, "reader")
			cfg, _ := remotelog.DefaultConfig("paged")
			cfg.Policy.PageEntries = 64 // small pages, so a few hundred messages span several
			cfg.Policy.Window = 4
			name, err := remotelog.Init(wdir, cfg)
			if err != nil {
				return err
			}
			cfg, _ = remotelog.DefaultConfig("paged")
			if _, err := remotelog.Init(rdir, cfg); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "writer log %s\npages of at most 64 messages, head window of 4 pages\n\n", name)
			fmt.Fprintf(a.stdout, "%-6s | %-29s | %s\n", "", "writer", "reader (verified: hashes, signature, ids)")
			fmt.Fprintf(a.stdout, "%-6s | %-8s %-9s %-10s | %-9s %-7s %-12s %-9s %s\n", "round", "appended", "log pages", "publish", "new msgs", "rounds", "page fetches", "bytes", "time")
			start := time.Now()
			total := 0
			for r := 1; r <= rounds; r++ {
				n := perRound + (r*37)%perRound
				t0 := time.Now()
				res, err := demoWrite(ctx, wdir, total, n)
				if err != nil {
					return err
				}
				total += n
				pubTime := time.Since(t0)
				got, st, err := demoRead(ctx, rdir, wdir, name)
				if err != nil {
					return err
				}
				if got != n {
					return fmt.Errorf("round %d: reader got %d messages, want %d", r, got, n)
				}
				fmt.Fprintf(a.stdout, "%-6d | %-8d %-9d %-10s | %-9d %-7d %-12d %-9d %s\n", r, n, res.Pages, pubTime.Round(time.Millisecond),
					got, st.Rounds, st.Pages, st.BytesFetched, time.Since(t0).Round(time.Millisecond))
			}
			fmt.Fprintf(a.stdout, "\n%d messages written, published, and read exactly once with every block hash, record signature,\npage number, sequence and message id verified, in %d rounds, %s in all\n", total, rounds, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().IntVar(&rounds, "rounds", 5, "rounds of append, publish and catch-up")
	cmd.Flags().IntVar(&perRound, "messages", 80, "about this many messages per round")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary repos and print where they are")
	return cmd
}

func demoWrite(ctx context.Context, dir string, from, n int) (remotelog.PublishResult, error) {
	repo, err := remotelog.Open(dir)
	if err != nil {
		return remotelog.PublishResult{}, err
	}
	defer repo.Close()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		return remotelog.PublishResult{}, err
	}
	defer w.Close()
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf("message %d from the writer", from+i+1))
	}
	if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
		return remotelog.PublishResult{}, err
	}
	return w.Publish(ctx, remotelog.PublishOptions{})
}

func demoRead(ctx context.Context, dir, from string, name ipns.Name) (int, remotelog.Stats, error) {
	repo, err := remotelog.Open(dir)
	if err != nil {
		return 0, remotelog.Stats{}, err
	}
	defer repo.Close()
	src, err := remotelog.OpenSource(ctx, from)
	if err != nil {
		return 0, remotelog.Stats{}, err
	}
	defer src.Close()
	cur, err := repo.Cursor(name)
	if err != nil {
		return 0, remotelog.Stats{}, err
	}
	got := 0
	next, st, err := remotelog.CatchUp(ctx, src, name, cur, remotelog.ReadOptions{}, func(remotelog.Message) error { got++; return nil })
	if err != nil {
		return got, st, err
	}
	return got, st, repo.SaveCursor(name, next)
}
