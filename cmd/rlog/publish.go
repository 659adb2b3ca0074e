package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"rlog/remotelog"
)

func (a *app) publishCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish everything appended since the last publish",
		Long: `Paginate the messages appended since the last publish, store the new pages and
payload blocks, and sign and publish a new record for the log's name. The record is
published last, so the name never points at anything missing; an interrupted publish
is finished by the next one.

Before publishing, rlog reads the published log back. If it holds messages the local
log lacks, or differs from it (a repo restored from an old copy), or the key published
another head with this device's last record sequence (a fork: one key on two devices),
rlog refuses and tells you to run 'rlog recover'.

--json keys: name, head, messages, new, pages (in the published log), record_seq,
blocks and bytes (put by this publish).`,
		Example: `  rlog append "hello" && rlog publish
  rlog publish --json
  rlog publish --api /ip4/127.0.0.1/tcp/5001   # to this Kubo daemon, not the repo's`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withLogWriter(cmd.Context(), true, func(_ remotelog.Config, w logWriter) error {
				if l, ok := w.(interface{ Len() uint64 }); ok && l.Len() == 0 {
					return failf(nil, "publish: the log is empty: append a message first ('rlog append TEXT')")
				}
				bar := a.progress("publishing")
				res, err := w.Publish(cmd.Context(), remotelog.PublishOptions{Progress: bar.update})
				bar.finish()
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, map[string]any{
						"name": res.Name.String(), "head": res.Head.String(), "messages": res.Messages,
						"new": res.New, "pages": res.Pages, "record_seq": res.RecordSeq, "blocks": res.Blocks, "bytes": res.Bytes,
					})
				}
				fmt.Fprintf(a.stdout, "name      %s\nhead      %s\nmessages  %d (%d new)\npages     %d\nrecord    sequence %d\n",
					res.Name, res.Head, res.Messages, res.New, res.Pages, res.RecordSeq)
				if res.New == 0 {
					fmt.Fprintf(a.stderr, "nothing new since the last publish: the record was signed again (sequence %d), which renews its lifetime\n", res.RecordSeq)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	a.apiFlagOn(cmd)
	return cmd
}

// progress shows a bar on stderr once work has taken more than a moment,
// and only when stderr is a terminal.
type progress struct {
	w       io.Writer
	what    string
	start   time.Time
	bar     *progressbar.ProgressBar
	enabled bool
}

func (a *app) progress(what string) *progress {
	f, ok := a.stderr.(*os.File)
	return &progress{w: a.stderr, what: what, start: time.Now(), enabled: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) update(done, total uint64) {
	if !p.enabled {
		return
	}
	if p.bar == nil {
		if time.Since(p.start) < 300*time.Millisecond {
			return
		}
		p.bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(p.what), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("msg"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	_ = p.bar.Set64(int64(done))
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
