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
validity, and print its value (the head page), sequence number, end of validity and TTL.
--json keys: name, head, record_seq, record_valid_to, ttl_seconds, verified.`,
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
					return writeJSON(a.stdout, map[string]any{
						"name": name.String(), "head": rec.Value.String(), "record_seq": rec.Sequence,
						"record_valid_to": rfc3339(rec.Validity), "ttl_seconds": rec.TTL.Seconds(), "verified": true,
					})
				}
				fmt.Fprintf(a.stdout, "name      %s\nvalue     /ipfs/%s\nsequence  %d\nvalid to  %s\nttl       %s\nverified  signature by the name's key, not expired\n",
					name, rec.Value, rec.Sequence, rfc3339(rec.Validity), plural(int64(rec.TTL.Seconds()), "second"))
				return nil
			}))
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the record as JSON")
	a.apiFlagOn(cmd)
	return cmd
}
