package remotelog

import (
	"context"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
)

// emptyStore is the store of a repo that has published nothing.
type emptyStore struct{}

func (emptyStore) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	return nil, fmt.Errorf("cas: get %s: %w", c, cas.ErrNotFound)
}
func (emptyStore) Has(context.Context, cid.Cid) (bool, error) { return false, nil }
func (emptyStore) Put(context.Context, []blocks.Block) error {
	return fmt.Errorf("cas: put: %w", cas.ErrReadOnly)
}
