package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) logCmd() *cobra.Command {
	var since uint64
	var asJSON bool
	var outDir, groupName, from string
	var drawGraph bool
	cmd := &cobra.Command{
		Use:   "log",
		Short: "List the local log",
		Long: `List the messages of this repo's own log, published or not, oldest first: sequence
number, the first 16 hex digits of the message id, time (RFC 3339, UTC) and text; --json
prints the lines of 'rlog fetch --json'. A large message is listed by size; --out DIR
saves the bodies as files.

--group NAME lists a group's messages from the start, merged as 'fetch --group' prints
them, from the members' logs this repo has ('fetch NAME --keep', 'rlog keep', and its
own), or with --from SOURCE from where 'fetch --group' reads them, leaving the group's
cursors as they are; --graph draws them in lanes, one per member, a line above a
message joining the lanes of the parents it names ('+').

Only this repo's own log is here. Logs you read are not stored unless you ask: 'rlog
fetch NAME --keep' (or 'rlog keep') keeps a log's blocks and record in this repo, and
'rlog fetch NAME --all' then reads it again from the repo, without the source.`,
		Example: `  rlog log
  rlog log --since 100 --json
  rlog log --group room --graph
  rlog log --group room --graph --from http://127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if groupName != "" {
				if outDir != "" || cmd.Flags().Changed("since") {
					return usagef("--group lists a group's small messages from the start: --out and --since list this repo's own log only")
				}
				return a.logGroup(cmd, groupName, from, drawGraph, asJSON)
			}
			if drawGraph {
				return usagef("--graph draws a group: give --group NAME")
			}
			if from != "" {
				return usagef("--from reads a group's members' logs: give --group NAME ('rlog fetch NAME --from SOURCE' reads another log)")
			}
			if err := makeOutDir(outDir); err != nil {
				return err
			}
			return a.withWriter(cmd.Context(), false, func(repo *remotelog.Repo, w *remotelog.Writer) error {
				if w.Len() <= since {
					return nil
				}
				k, err := remotelog.LoadKeyring(repo.Dir, w.Name())
				if err != nil {
					return err
				}
				out := &printer{w: a.stdout, asJSON: asJSON, outDir: outDir, private: k != nil, open: func(m remotelog.Message) (io.ReadCloser, error) {
					r, err := w.OpenBody(cmd.Context(), m)
					if err != nil || k == nil {
						return r, err
					}
					return openLocal(k, m.GroupID, r), nil
				}}
				deliver := out.print
				if k != nil {
					// A large local message is opened as its body streams.
					small := remotelog.Opening(k, out.print)
					deliver = func(m remotelog.Message) error {
						if m.IsLarge() && m.BodyFile == "" {
							return out.print(m)
						}
						return small(m)
					}
				}
				return w.Scan(since+1, w.Len(), deliver)
			})
		},
	}
	cmd.Flags().Uint64Var(&since, "since", 0, "list messages after this sequence number")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message")
	cmd.Flags().StringVar(&outDir, "out", "", outHelp)
	cmd.Flags().StringVar(&groupName, "group", "", "list a group's messages (rlog group), merged, from every member's log kept in this repo, from the start; cursors untouched")
	cmd.Flags().StringVar(&from, "from", "", "with --group: read the members' logs from here instead of this repo: "+strings.TrimPrefix(fromHelp, "where to read: "))
	cmd.Flags().BoolVar(&drawGraph, "graph", false, "with --group: draw the DAG in lanes, one per member, oldest first")
	return cmd
}
