package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"rlog/namesys"
	"rlog/remotelog"
)

func (a *app) followCmd() *cobra.Command {
	var froms []string
	var asJSON bool
	var outDir string
	var minInterval, maxInterval time.Duration
	var groupName string
	cmd := &cobra.Command{
		Use:   "follow NAME|LINK --from SOURCE",
		Short: "Keep printing new messages of log NAME as they are published",
		Long: `A read-only subscription: print what this repo has not seen of log NAME, then keep
printing new messages as they are published, saving the cursor after each batch, so a
restarted follower resumes where it stopped and prints nothing twice.

When the source is 'rlog serve', its head events push each publish to the follower at
once. Other sources are polled: every --min-interval at first, backing off to
--max-interval while nothing changes. When the source goes away the follower says so and
keeps trying, at least every 5 s (or --max-interval if shorter), so as not to miss a
source that is back for a short while; a follower of 'rlog serve' tries again at once.
On start it says how far behind it is. It stops on Ctrl-C, or with an error when the
log was rewritten (fork), or at once when the source answers that nothing is published
under NAME (a mistyped name).

The follower is a subscription of the repo's node: while 'rlog run' (or serve, sync,
keep) owns the repo, it runs there, over the repo's control socket, and Ctrl-C ends the
follower, not the node; else it starts the repo's node for as long as it runs, and other
commands in the repo work through it. A private log is followed with its share link in
place of NAME (see 'rlog fetch --help').

--group GROUP follows a group kept in the repo ('rlog group'): it reads every member's
log from --from, merged and held back as 'fetch --group' does, polling every
--min-interval, backing off to --max-interval while nothing is new. A member that
cannot be read is said once, until that changes. It takes one --from: the group's
ephemeral messages come from the node behind that one source ('fetch --group' takes
several).`,
		Example: `  rlog follow k51qzi5uqu5d... --from http://127.0.0.1:8080  # serve pushes each publish
  rlog follow k51qzi5uqu5d... --from /media/usb/.rlog --max-interval 10s
  rlog follow k51qzi5uqu5d... --from kubo: --json
  rlog follow --group room --from http://127.0.0.1:8080`,
		Args: nameOrGroup(&groupName),
		RunE: func(cmd *cobra.Command, args []string) error {
			if groupName != "" {
				from, err := oneSource("follow --group", froms, true)
				if err != nil {
					return err
				}
				return a.followGroup(cmd, groupName, from, asJSON, minInterval, maxInterval)
			}
			dir, cfg, err := a.repoConfig()
			if err != nil {
				return err
			}
			name, err := nameArg(dir, args[0])
			if err != nil {
				return err
			}
			if len(froms) == 0 {
				if cfg.Backend != "kubo" && a.apiFlag == "" {
					return usagef("give --from SOURCE: a gateway (e.g. http://127.0.0.1:8080 from 'rlog serve'), a repo folder, or kubo:")
				}
				api := a.apiFlag
				if api == "" {
					if api = cfg.KuboAPI; api == "" {
						if api, err = a.localKuboAPI(); err != nil {
							return failf(err, "this repo reads through Kubo, but %v: start `ipfs daemon`, or give --api MULTIADDR or --from SOURCE", err)
						}
					}
				}
				froms = []string{"kubo:" + api}
			}
			sctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// A source that answers that nothing is published under the name
			// on the first look ends the follower: the name is most likely wrong.
			ctx, giveUp := context.WithCancelCause(sctx)
			defer giveUp(nil)
			// The follower is a subscription of the repo's node: the one
			// that owns the repo (this command runs in it, sent over its
			// control socket), else one started here for as long as it runs.
			err = a.onNode(ctx, func(node *remotelog.Node) error {
				return a.follow(ctx, node, name, froms, asJSON, outDir, minInterval, maxInterval, giveUp)
			})
			var le *remotelog.LockedError
			if errors.As(err, &le) {
				// A node took the repo meanwhile: follow in it.
				if done, ferr := a.forward(cmd, args); done {
					return ferr
				}
			}
			if cause := context.Cause(ctx); explained(cause) {
				return cause
			}
			return privateHint(name, err)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&froms, "from", nil, fromHelp+fromsHelp+" (once with --group)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per message")
	f.StringVar(&groupName, "group", "", "follow every member's log of this group (rlog group), merged as 'fetch --group' prints them; polls the source")
	f.StringVar(&outDir, "out", "", outHelp)
	f.DurationVar(&minInterval, "min-interval", time.Second, "shortest time between looks when polling")
	f.DurationVar(&maxInterval, "max-interval", time.Minute, "longest time between looks while nothing changes")
	a.apiFlagOn(cmd)
	a.retriesFlagOn(cmd)
	return cmd
}

// follow prints log name's messages read from froms, as a subscription of
// node, until ctx ends: giveUp ends it when the source says nothing is
// published under name.
func (a *app) follow(ctx context.Context, node *remotelog.Node, name ipns.Name, froms []string, asJSON bool, outDir string, minInterval, maxInterval time.Duration, giveUp context.CancelCauseFunc) error {
	dir := node.Repo().Dir
	from := strings.Join(froms, ", ")
	if err := makeOutDir(outDir); err != nil {
		return err
	}
	src, err := a.openSources(ctx, froms)
	if err != nil {
		return err
	}
	defer src.Close()
	cursors := remotelog.Cursors(dir)
	cur, err := cursors.Get(name)
	if err != nil {
		return err
	}
	// Each message delivered is recorded at once, with where the output
	// stood after it (see fetch).
	mo, prog, err := a.exactlyOnce(cursors, name, cur)
	if err != nil {
		return err
	}
	defer prog.Close()
	out := &printer{w: mo, asJSON: asJSON, outDir: outDir}
	// mark records where the output stands after the last message
	// delivered: after a line that is not a message, and after a save,
	// which empties the progress file.
	at := remotelog.Cursor{Seq: cur.Seq, ID: cur.ID}
	mark := func() error { return prog.DeliveredTo(at.Seq, at.ID, mo.Mark()) }
	var verified uint64
	read := remotelog.ReadOptions{SpoolDir: outDir}
	deliver, private, err := opening(dir, name, &read, func(m remotelog.Message) error {
		if err := printRecorded(out, mo, prog, m); err != nil {
			return err
		}
		verified++
		at = remotelog.Cursor{Seq: m.Seq, ID: m.ID}
		return nil
	})
	if err != nil {
		return err
	}
	out.private = private
	// --json: a status line after each look that caught up or
	// failed: messages verified so far and the source in use.
	status := func(s remotelog.FollowStatus) {
		if !asJSON || (s.Err == nil && s.Caught == 0) || mo.Reconciling() {
			return
		}
		st := map[string]any{"verified": verified, "at": cur.Seq + verified}
		if p, ok := src.(*pooled); ok {
			ps := p.Stats()
			st["source"], st["requests"], st["retries"] = ps.Using, ps.Requests, ps.Retries
		} else {
			st["source"] = from
		}
		if s.Err != nil {
			st["error"] = a.brief(s.Err)
		}
		writeJSONLine(mo, map[string]any{"status": st})
		mark()
	}
	seen := cur.RecordSeq > 0
	err = node.Follow(ctx, name, src, remotelog.FollowOptions{
		Read:        read,
		MinInterval: minInterval, MaxInterval: maxInterval,
		Save: func(remotelog.Cursor) error { return mark() },
		Status: func(s remotelog.FollowStatus) {
			status(s)
			switch {
			case s.Err != nil && !seen && (errors.Is(s.Err, remotelog.ErrNoLog) || errors.Is(s.Err, namesys.ErrNotFound)):
				giveUp(failf(s.Err, "log %s is not published at %s: check the name (a follower of a log not published yet starts after its first publish)", name, from))
			case s.Err != nil:
				fmt.Fprintf(a.stderr, "source unavailable: %s; trying again in %s\n", a.brief(s.Err), s.Wait)
			case s.Behind > 0:
				seen = true
				fmt.Fprintf(a.stderr, "catching up: %s behind\n", plural(s.Behind, "message"))
			default:
				seen = true
			}
		},
	}, deliver)
	return err
}
