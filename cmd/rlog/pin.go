package main

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"rlog/cas"
	"rlog/namesys"
	"rlog/remotelog"
)

func (a *app) pinCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "pin NAME",
		Short: "Make this repo's Kubo daemon keep log NAME and serve its record",
		Long: `Resolve log NAME (from --from, else through the daemon), verify its record, then have
this repo's Kubo daemon (--api, or the repo's) pin the log's head recursively, which
fetches every page and payload it lacks from its peers, and store the signed record,
so the daemon keeps the log and serves it after the writer's daemon is gone. Run it
again after each publish to move the pin to the new head (a pin update).`,
		Example: `  rlog pin k51qzi5uqu5d... --api /ip4/127.0.0.1/tcp/5001
  rlog pin k51qzi5uqu5d... --from http://writer:8080   # in a repo of 'rlog init --kubo'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseName(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return a.notPublished(name, from, a.withSource(ctx, from, func(repo *remotelog.Repo, src remotelog.Source) error {
				b, release, err := a.backend(ctx, repo)
				if err != nil {
					return err
				}
				defer release()
				if b == nil {
					return usagef("pin needs a Kubo daemon: give --api MULTIADDR, or use a repo made with `rlog init --kubo`")
				}
				rec, err := namesys.Resolve(ctx, src, name, time.Now())
				if err != nil {
					return err
				}
				cur, err := repo.Cursor(name)
				if err != nil {
					return err
				}
				if err := namesys.Compare(cur.Record(name), rec); err != nil {
					return err
				}
				k, ok := b.Store.(*cas.Kubo)
				if !ok {
					return fmt.Errorf("the backend cannot pin")
				}
				old, _ := cid.Decode(cur.Pinned)
				if err := k.Pin(ctx, old, rec.Value); err != nil {
					return err
				}
				if err := b.Names.Publish(ctx, name, rec.Raw); err != nil {
					return err
				}
				cur.Pinned, cur.RecordSeq, cur.Head = rec.Value.String(), rec.Sequence, rec.Value.String()
				if err := repo.SaveCursor(name, cur); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "pinned    /ipfs/%s\nrecord    sequence %d, stored in the daemon\n", rec.Value, rec.Sequence)
				return nil
			}))
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	a.apiFlagOn(cmd)
	return cmd
}
