package main

import (
	"context"
	"errors"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"rlog/cas"
	"rlog/remotelog"
)

func (a *app) blockCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "block", Short: "Read raw blocks",
		Example: `  rlog block get bafyrei... > page.cbor`}
	var from string
	get := &cobra.Command{
		Use:   "get CID",
		Short: "Write a raw block to standard output, after checking its hash",
		Long: `Read block CID from --from (else this repo's backend), check that its bytes hash to
the CID, and write them to standard output unchanged.`,
		Example: `  rlog block get bafyrei... > page.cbor
  rlog block get bafyrei... --from http://127.0.0.1:8080 | ipfs dag import`,
		Args: cobra.ExactArgs(1),
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
	a.apiFlagOn(get)
	cmd.AddCommand(get)
	return cmd
}

// getBlock reads the block CID arg names from --from (or the repo's
// backend) and checks its hash.
func (a *app) getBlock(ctx context.Context, from, arg string) ([]byte, error) {
	c, err := cid.Decode(arg)
	if err != nil {
		if _, nerr := ipns.NameFromString(arg); nerr == nil {
			return nil, usagef("%s is a log name, not a block CID: 'rlog resolve %s' prints its head page's CID", arg, arg)
		}
		return nil, usageFail(err, "%q is not a CID (a block CID looks like bafyrei...)", arg)
	}
	if c.Type() == cid.Libp2pKey {
		return nil, usagef("%s is a log name, not a block CID: 'rlog resolve %s' prints its head page's CID", arg, arg)
	}
	var b []byte
	err = a.withSource(ctx, from, func(_ *remotelog.Repo, src remotelog.Source) error {
		b, err = cas.Verify(src).Get(ctx, c)
		return err
	})
	if errors.Is(err, cas.ErrNotFound) && !explained(err) {
		where := from
		if where == "" {
			where = "this repo's backend (give --from to read elsewhere)"
		}
		return nil, failf(err, "block %s not found in %s", c, where)
	}
	return b, err
}
