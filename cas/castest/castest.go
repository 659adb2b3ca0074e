package castest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	blocks "github.com/ipfs/go-block-format"

	"rlog/cas"
)

// Run checks the Store contract on a fresh, empty store.
func Run(t *testing.T, s cas.Store) {
	ctx := context.Background()
	var blks []blocks.Block
	for i := range 100 {
		c, b, err := cas.PayloadBlocks([]byte(fmt.Sprintf("block %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		_ = c
		blks = append(blks, b...)
	}
	missing := blks[99]
	if _, err := s.Get(ctx, missing.Cid()); !errors.Is(err, cas.ErrNotFound) {
		t.Fatalf("get of a missing block: got %v, want ErrNotFound", err)
	}
	if ok, err := s.Has(ctx, missing.Cid()); err != nil || ok {
		t.Fatalf("has of a missing block: %v %v", ok, err)
	}
	if err := s.Put(ctx, blks[:99]); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, blks[:10]); err != nil {
		t.Fatalf("put is not idempotent: %v", err)
	}
	for _, b := range blks[:99] {
		got, err := s.Get(ctx, b.Cid())
		if err != nil || string(got) != string(b.RawData()) {
			t.Fatalf("get %s: %q %v", b.Cid(), got, err)
		}
		if ok, err := s.Has(ctx, b.Cid()); err != nil || !ok {
			t.Fatalf("has %s: %v %v", b.Cid(), ok, err)
		}
	}
	if d, ok := s.(cas.Deleter); ok {
		if err := d.Delete(ctx, blks[0].Cid()); err != nil {
			t.Fatal(err)
		}
		if err := d.Delete(ctx, blks[0].Cid()); err != nil {
			t.Fatalf("delete of a missing block: %v", err)
		}
		if _, err := s.Get(ctx, blks[0].Cid()); !errors.Is(err, cas.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
	}
}
