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
validity, and print its value (the head page), sequence number, end of validity and TTL.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseName(args[0])
			if err != nil {
				return err
			}
			return a.withSource(cmd.Context(), from, func(_ *remotelog.Repo, src remotelog.Source) error {
				rec, err := namesys.Resolve(cmd.Context(), src, name, time.Now())
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, map[string]any{
						"name": name.String(), "value": "/ipfs/" + rec.Value.String(), "sequence": rec.Sequence,
						"validity": rec.Validity.UTC().Format(time.RFC3339), "ttl": rec.TTL.String(), "verified": true,
					})
				}
				fmt.Fprintf(a.stdout, "name      %s\nvalue     /ipfs/%s\nsequence  %d\nvalid to  %s\nttl       %s\nverified  signature by the name's key, not expired\n",
					name, rec.Value, rec.Sequence, rec.Validity.UTC().Format(time.RFC3339), rec.TTL)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the record as JSON")
	return cmd
}
