package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"rlog/remotelog"
)

func (a *app) recoverCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Rebuild the local log on the published one after a restore",
		Long: `When 'rlog publish' refuses because the published log is ahead of the local one
or differs from it (the repo was restored from an old copy, or the key was used on
another device), recover rebuilds the local log: first every published message, then
every local message the published log lacks. Nothing is lost. Run 'rlog publish'
afterwards.

When the key published two logs with one record sequence (a fork: two devices, or a
restored backup of the other device, which 'rlog restore' keeps as the fork's proof),
the other log's messages come after the published ones, and the next publish's record
supersedes both.`,
		Example: `  rlog publish      # refuses: the local log is behind the published one
  rlog recover
  rlog publish`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWriter(cmd.Context(), true, func(_ *remotelog.Repo, w *remotelog.Writer) error {
				res, err := w.Recover(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "recovered %s; ", plural(res.Published, "published message"))
				if res.Fork.Defined() {
					fmt.Fprintf(a.stdout, "merged %s of the fork's other log (head %s); ", plural(res.Merged, "message"), res.Fork)
				}
				fmt.Fprintf(a.stdout, "kept %s the published log lacked (now after them); %d already published\nrun 'rlog publish' next\n",
					plural(res.Kept, "local message"), res.Dropped)
				return nil
			})
		},
	}
	a.apiFlagOn(cmd)
	return cmd
}
