package main

import (
	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"rlog/cas"
	"rlog/remotelog"
)

func (a *app) blockCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "block", Short: "Read raw blocks"}
	var from string
	get := &cobra.Command{
		Use:   "get CID",
		Short: "Write a raw block to standard output, after checking its hash",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cid.Decode(args[0])
			if err != nil {
				return usagef("%q is not a CID: %v", args[0], err)
			}
			return a.withSource(cmd.Context(), from, func(_ *remotelog.Repo, src remotelog.Source) error {
				b, err := cas.Verify(src).Get(cmd.Context(), c)
				if err != nil {
					return err
				}
				_, err = a.stdout.Write(b)
				return err
			})
		},
	}
	get.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.AddCommand(get)
	return cmd
}
