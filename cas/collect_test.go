package cas_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/multiformats/go-multihash"

	"rlog/cas"
)

// TestCollect removes exactly the blocks the mark does not keep, but never
// one put while the collection runs, and Walk sees what is left.
func TestCollect(t *testing.T) {
	ctx := context.Background()
	s, err := cas.OpenEmbedded(filepath.Join(t.TempDir(), "blocks"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	block := func(i int) blocks.Block {
		_, blks, _ := cas.PayloadBlocks([]byte(fmt.Sprintf("block %d", i)))
		return blks[0]
	}
	var all []blocks.Block
	for i := range 100 {
		all = append(all, block(i))
	}
	if err := s.Put(ctx, all); err != nil {
		t.Fatal(err)
	}
	late := block(1000)
	res, err := s.Collect(ctx, func(ctx context.Context) (func(multihash.Multihash) bool, error) {
		// Stored while the collection runs: not live, but kept.
		if err := s.Put(ctx, []blocks.Block{late}); err != nil {
			return nil, err
		}
		return func(mh multihash.Multihash) bool {
			for i := 0; i < 100; i += 2 {
				if string(all[i].Cid().Hash()) == string(mh) {
					return true
				}
			}
			return false
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocks != 50 || res.Kept != 51 {
		t.Fatalf("collected %d, kept %d; want 50 and 51", res.Blocks, res.Kept)
	}
	for i, b := range all {
		ok, err := s.Has(ctx, b.Cid())
		if err != nil || ok != (i%2 == 0) {
			t.Fatalf("block %d: has %v (%v) after collect", i, ok, err)
		}
	}
	if ok, _ := s.Has(ctx, late.Cid()); !ok {
		t.Fatal("the block put during the collection was collected")
	}
	n := 0
	if err := s.Walk(ctx, func(multihash.Multihash, int) error { n++; return nil }); err != nil || n != 51 {
		t.Fatalf("walk: %d blocks, %v; want 51", n, err)
	}
}
