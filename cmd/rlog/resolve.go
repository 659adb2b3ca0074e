package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"rlog/namesys"
	"rlog/remotelog"
)

func (a *app) resolveCmd() *cobra.Command {
	var from string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "resolve NAME",
		Short: "Print the verified record of log NAME",
		Long: `Fetch the IPNS record of NAME, verify its signature against the name and its
validity, and print its value (the head page), sequence number, end of validity and TTL,
and the hint it carries for readers (format v3: the first sequence of the head's page
and its window node; docs/FORMAT.md), if any. --json keys: name, head, record_seq,
record_valid_to, ttl_seconds, verified, and with a hint hint_page_start and
hint_window_node.`,
		Example: `  rlog resolve k51qzi5uqu5d...
  rlog resolve k51qzi5uqu5d... --from http://127.0.0.1:8080 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseName(args[0])
			if err != nil {
				return err
			}
			return a.notPublished(name, from, a.withSource(cmd.Context(), from, func(_ *remotelog.Repo, src remotelog.Source) error {
				rec, err := namesys.Resolve(cmd.Context(), src, name, time.Now())
				if err != nil {
					return err
				}
				if asJSON {
					out := map[string]any{
						"name": name.String(), "head": rec.Value.String(), "record_seq": rec.Sequence,
						"record_valid_to": rfc3339(rec.Validity), "ttl_seconds": rec.TTL.Seconds(), "verified": true,
					}
					if rec.Hint.Node.Defined() {
						out["hint_page_start"], out["hint_window_node"] = rec.Hint.PageStart, rec.Hint.Node.String()
					}
					return writeJSON(a.stdout, out)
				}
				fmt.Fprintf(a.stdout, "name      %s\nvalue     /ipfs/%s\nsequence  %d\nvalid to  %s\nttl       %s\n",
					name, rec.Value, rec.Sequence, rfc3339(rec.Validity), plural(int64(rec.TTL.Seconds()), "second"))
				if rec.Hint.Node.Defined() {
					fmt.Fprintf(a.stdout, "hint      the head's page from sequence %d, window node %s\n", rec.Hint.PageStart, rec.Hint.Node)
				}
				fmt.Fprintf(a.stdout, "verified  signature by the name's key, not expired\n")
				return nil
			}))
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the record as JSON")
	a.apiFlagOn(cmd)
	return cmd
}
