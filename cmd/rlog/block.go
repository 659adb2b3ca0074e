package main

import (
	"context"

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
			b, err := a.getBlock(cmd.Context(), from, args[0])
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	get.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.AddCommand(get)
	return cmd
}

// getBlock reads the block CID arg names from --from (or the repo's
// backend) and checks its hash.
func (a *app) getBlock(ctx context.Context, from, arg string) ([]byte, error) {
	c, err := cid.Decode(arg)
	if err != nil {
		return nil, usagef("%q is not a CID: %v", arg, err)
	}
	var b []byte
	err = a.withSource(ctx, from, func(_ *remotelog.Repo, src remotelog.Source) error {
		b, err = cas.Verify(src).Get(ctx, c)
		return err
	})
	return b, err
}
