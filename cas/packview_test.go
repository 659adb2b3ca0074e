package cas

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func randomRawBlock(t *testing.T, n int) blocks.Block {
	b := make([]byte, n)
	rand.Read(b)
	h, _ := multihash.Sum(b, multihash.SHA2_256, -1)
	blk, _ := blocks.NewBlockWithCid(b, cid.NewCidV1(cid.Raw, h))
	return blk
}

// Reads of packed blocks go on while publishes roll packs over: a pack's
// file is never closed under a read (they failed with "file already
// closed" when a rollover replaced the file a reader had looked up).
func TestPackReadsDuringRollover(t *testing.T) {
	old := packMax
	packMax = 64 << 10
	defer func() { packMax = old }()
	ctx := context.Background()
	e, err := OpenEmbedded(filepath.Join(t.TempDir(), "blocks"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	first := []blocks.Block{randomRawBlock(t, 20<<10)}
	if err := e.PutPacked(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var last atomic.Value
	last.Store(first[0].Cid())
	var stop atomic.Bool
	var fails atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := e.Get(ctx, last.Load().(cid.Cid)); err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	for range 300 {
		b := randomRawBlock(t, 20<<10)
		if err := e.PutPacked(ctx, []blocks.Block{b}); err != nil {
			t.Fatal(err)
		}
		if err := e.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		last.Store(b.Cid())
	}
	stop.Store(true)
	wg.Wait()
	if fails.Load() > 0 {
		t.Fatalf("%d reads failed, first: %v", fails.Load(), firstErr.Load())
	}
}

// A read-only store reads a block its tables hold without opening its
// view again, while a writer changes the store (the pack index's miss
// before the tables' opened a newer view at every read); a page packed
// since the view was opened is still found.
func TestViewReadsTablesWithoutReopening(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	w, err := OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b := randomRawBlock(t, 1000)
	if err := w.Put(ctx, []blocks.Block{b}); err != nil {
		t.Fatal(err)
	}
	r, err := OpenEmbedded(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reopened := 0
	for range 20 {
		// the writer writes something else meanwhile
		if err := w.Put(ctx, []blocks.Block{randomRawBlock(t, 1000)}); err != nil {
			t.Fatal(err)
		}
		fp := r.view.fingerprint()
		if _, err := r.Get(ctx, b.Cid()); err != nil {
			t.Fatal(err)
		}
		if r.view.fingerprint() != fp {
			reopened++
		}
	}
	if reopened > 0 {
		t.Fatalf("the view was reopened on %d of 20 Gets of a block it already held", reopened)
	}
	page := randomRawBlock(t, 50_000)
	if err := w.PutPacked(ctx, []blocks.Block{page}); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := r.Get(ctx, page.Cid()); err != nil || len(b) != 50_000 {
		t.Fatalf("a page packed after the view was opened: %d bytes, %v", len(b), err)
	}
	if ok, err := r.Has(ctx, page.Cid()); err != nil || !ok {
		t.Fatalf("Has of a page packed after the view was opened: %v, %v", ok, err)
	}
}
