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

// benchResult is what `rlog bench --json` prints.
type benchResult struct {
	Preset        string       `json:"preset"`
	Messages      int          `json:"messages"`
	BodyBytes     int          `json:"body_bytes"`
	Batch         int          `json:"batch"`
	WriteSeconds  float64      `json:"write_seconds"`
	WriteMsgsPerS float64      `json:"write_msgs_per_s"`
	CatchUps      []benchCatch `json:"catch_ups"`
}

type benchCatch struct {
	Missing      int     `json:"missing"`
	Seconds      float64 `json:"seconds"`
	Rounds       int     `json:"rounds"`
	PageFetches  int     `json:"page_fetches"`
	BytesPerMsg  float64 `json:"bytes_per_msg"`
	OverheadPerc float64 `json:"overhead_percent"`
}

func (a *app) benchCmd() *cobra.Command {
	var preset string
	var messages, size, batch int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure append+publish and catch-up on the embedded store",
		Long: `In a temporary directory: append and publish --messages messages of --size bytes in
batches of --batch (append then publish per batch) and report messages per second end
to end; then catch up 100 and 10,000 missing messages from the writer's repo as another
reader would, and report rounds of sequential fetches, bytes fetched per message and the
share of bytes fetched beyond the wire payloads. Figures: docs/PERFORMANCE.md.`,
		Example: `  rlog bench
  rlog bench --preset full --messages 10000 --size 1024 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runBench(cmd.Context(), preset, messages, size, batch)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "append+publish  %d messages of %d B in batches of %d (%s): %.2f s, %.0f messages/s\n",
				res.Messages, res.BodyBytes, res.Batch, res.Preset, res.WriteSeconds, res.WriteMsgsPerS)
			for _, c := range res.CatchUps {
				fmt.Fprintf(a.stdout, "catch-up        %d missing: %.1f ms, %s, %s, %.0f B/message, %.1f%% beyond payloads\n",
					c.Missing, c.Seconds*1000, plural(c.Rounds, "round"), plural(c.PageFetches, "page fetch"), c.BytesPerMsg, c.OverheadPerc)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "paged", "pagination preset of the writer")
	f.IntVar(&messages, "messages", 100_000, "messages to write")
	f.IntVar(&size, "size", 256, "body bytes per message")
	f.IntVar(&batch, "batch", 1000, "messages per append+publish")
	f.BoolVar(&asJSON, "json", false, "print the figures as JSON")
	return cmd
}

func runBench(ctx context.Context, preset string, messages, size, batch int) (benchResult, error) {
	res := benchResult{Preset: preset, Messages: messages, BodyBytes: size, Batch: batch}
	if messages < 1 || batch < 1 || size < 0 {
		return res, usagef("--messages and --batch must be positive")
	}
	tmp, err := os.MkdirTemp("", "rlog-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	cfg, err := remotelog.DefaultConfig(preset)
	if err != nil {
		return res, usageError{err}
	}
	dir := filepath.Join(tmp, "writer")
	name, err := remotelog.Init(dir, cfg)
	if err != nil {
		return res, err
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		return res, err
	}
	w, err := repo.Writer(nil, nil)
	if err != nil {
		repo.Close()
		return res, err
	}
	bodies := make([][]byte, batch)
	for i := range bodies {
		bodies[i] = make([]byte, size)
	}
	start := time.Now()
	for done := 0; done < messages; done += batch {
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies[:min(batch, messages-done)]); err != nil {
			return res, err
		}
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			return res, err
		}
	}
	res.WriteSeconds = time.Since(start).Seconds()
	res.WriteMsgsPerS = float64(messages) / res.WriteSeconds
	w.Close()
	repo.Close()
	src, err := remotelog.OpenSource(ctx, dir)
	if err != nil {
		return res, err
	}
	defer src.Close()
	for _, missing := range []int{100, 10_000} {
		if missing > messages {
			continue
		}
		c, err := benchCatchUp(ctx, src, name, uint64(messages-missing))
		if err != nil {
			return res, err
		}
		c.Missing = missing
		res.CatchUps = append(res.CatchUps, c)
	}
	return res, nil
}

func benchCatchUp(ctx context.Context, src remotelog.Source, name ipns.Name, from uint64) (benchCatch, error) {
	start := time.Now()
	_, st, err := remotelog.CatchUp(ctx, src, name, remotelog.Cursor{Seq: from}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
	if err != nil {
		return benchCatch{}, err
	}
	return benchCatch{
		Seconds: time.Since(start).Seconds(), Rounds: st.Rounds, PageFetches: st.Pages,
		BytesPerMsg:  float64(st.BytesFetched) / float64(st.Messages),
		OverheadPerc: 100 * float64(st.BytesFetched-st.PayloadBytes) / float64(st.PayloadBytes),
	}, nil
}
