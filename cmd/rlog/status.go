package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the node running in this repo runs and how far it is",
		Long: `Ask the node that owns this repo (rlog run, serve, sync or keep) over its control
socket what it runs: its gateway's address, how many messages its log holds and how many
are published, its sync peers and what is owed to them, and how far each subscription
has read. It fails (exit 1) when no node runs in the repo. --json prints one object
(docs/CLI.md).`,
		Example: `  rlog status
  rlog status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.repoDir()
			if err != nil {
				return err
			}
			if !ownerListens(dir) {
				return failf(remotelog.ErrNoSync, "no node runs in %s: start one with 'rlog run' (or serve, sync, keep)", dir)
			}
			owner, err := remotelog.DialControl(dir)
			if err != nil {
				return err
			}
			st, err := owner.NodeStatus(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, st)
			}
			fmt.Fprintf(a.stdout, "name      %s\nmessages  %d (%d published)\n", st.Name, st.Messages, st.Published)
			if st.Gateway != "" {
				fmt.Fprintf(a.stdout, "gateway   %s\n", st.Gateway)
			}
			if st.Sync != nil {
				fmt.Fprintf(a.stdout, "sync      %s, group %s\n", st.Sync.ID, st.Sync.Group)
				for _, p := range st.Sync.Peers {
					fmt.Fprintf(a.stdout, "peer      %s connected=%v pending=%d\n", p.ID, p.Connected, st.Sync.Pending[p.ID])
				}
			}
			for _, s := range st.Subscriptions {
				fmt.Fprintln(a.stdout, subscriptionLine("follows", s))
			}
			for _, s := range st.Kept {
				fmt.Fprintln(a.stdout, subscriptionLine("keeps", s))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// subscriptionLine is a followed or kept log in `rlog status`: how far it
// is read, from which source, and why it last failed.
func subscriptionLine(verb string, s remotelog.SubscriptionStatus) string {
	line := fmt.Sprintf("%-9s %s at %d", verb, s.Name, s.Seq)
	if s.Source != "" {
		line += " from " + s.Source
	}
	if s.Error != "" {
		line += " (" + s.Error + ")"
	}
	return line
}
