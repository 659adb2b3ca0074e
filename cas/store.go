package cas

import (
	"context"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Getter reads one block. It is all a page walk or payload read needs.
type Getter interface {
	// Get returns the block's bytes, or an error wrapping ErrNotFound.
	// The caller must not modify the returned slice.
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
}

// Store is a content-addressed block store.
type Store interface {
	Getter
	// Has reports whether the store holds the block.
	Has(ctx context.Context, c cid.Cid) (bool, error)
	// Put stores blocks; it is idempotent. A backend may send them in one
	// request (a Kubo store sends one CAR). The store may keep the slices.
	Put(ctx context.Context, blks []blocks.Block) error
}

// PutBatch is how many bytes of blocks a streaming import (a payload file,
// a CAR, a kept log) collects before one Put: memory stays bounded by it,
// whatever the size of what is imported.
const PutBatch = 4 << 20

// A Loader stores many new blocks at once (a restore) faster than Put:
// Load sorts cids into the order the store writes best, reads each block
// with get, stores those it lacks, and returns how many of cids it holds
// then. They are durable when Load returns, as after a Put.
type Loader interface {
	Load(ctx context.Context, cids []cid.Cid, get func(context.Context, cid.Cid) ([]byte, error)) (int, error)
}

// Load stores the blocks cids, read with get, into dst: with dst's Load
// when it is a Loader, else by Put in batches of PutBatch bytes. It
// returns how many blocks it stored (or found held).
func Load(ctx context.Context, dst Store, cids []cid.Cid, get func(context.Context, cid.Cid) ([]byte, error)) (int, error) {
	if l, ok := dst.(Loader); ok {
		return l.Load(ctx, cids, get)
	}
	var batch []blocks.Block
	size, n := 0, 0
	put := func() error {
		if err := dst.Put(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		batch, size = nil, 0
		return nil
	}
	for _, c := range cids {
		b, err := get(ctx, c)
		if err != nil {
			return n, err
		}
		batch = append(batch, NewBlock(c, b))
		if size += len(b); size >= PutBatch {
			if err := put(); err != nil {
				return n, err
			}
		}
	}
	if len(batch) > 0 {
		return n, put()
	}
	return n, nil
}

// A Packer stores blocks meant to be kept for good (a log's sealed pages)
// apart from the others, written once and never merged again (the
// embedded store's pack files). They are durable once the store's Sync
// returns.
type Packer interface {
	PutPacked(ctx context.Context, blks []blocks.Block) error
}

// Deleter is the optional ability to remove a block. Deleting a missing
// block is not an error.
type Deleter interface {
	Delete(ctx context.Context, c cid.Cid) error
}

// Verify wraps a Getter so that every block it returns is re-hashed and a
// block whose bytes do not match its CID is an error wrapping
// ErrHashMismatch, never data.
func Verify(g Getter) Getter { return verifier{g} }

type verifier struct{ g Getter }

func (v verifier) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := v.g.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := Check(c, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Check reports whether b hashes to c.
func Check(c cid.Cid, b []byte) error {
	got, err := c.Prefix().Sum(b)
	if err != nil {
		return fmt.Errorf("cas: hash block %s: %w", c, err)
	}
	if !got.Equals(c) {
		return fmt.Errorf("cas: block %s: %w (its bytes hash to %s)", c, ErrHashMismatch, got)
	}
	return nil
}

// NewBlock pairs bytes with a CID the caller computed from them.
func NewBlock(c cid.Cid, b []byte) blocks.Block {
	blk, _ := blocks.NewBlockWithCid(b, c) // verifies only in debug builds
	return blk
}
