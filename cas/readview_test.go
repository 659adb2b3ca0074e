package cas_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
)

// bigBlock is a 100 KiB block: a few dozen of them fill LevelDB's write
// buffer, so that the writer flushes, compacts and removes files.
func bigBlock(i int) blocks.Block {
	b := make([]byte, 100<<10)
	copy(b, fmt.Sprintf("block %d", i))
	b[len(b)-1] = byte(i)
	return blocks.NewBlock(b)
}

// A reader of a store takes no lock: it opens while the writer has the
// store open, the writer opens while readers have it open, and a reader
// sees what the writer wrote after it opened, across flushes and
// compactions that remove the files it opened.
func TestReadersAndTheWriterShareAStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	w, err := cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	first := bigBlock(0)
	if err := w.Put(ctx, []blocks.Block{first}); err != nil {
		t.Fatal(err)
	}
	r, err := cas.OpenEmbedded(dir, true)
	if err != nil {
		t.Fatalf("open a reader while the writer has the store: %v", err)
	}
	defer r.Close()
	if b, err := r.Get(ctx, first.Cid()); err != nil || len(b) != len(first.RawData()) {
		t.Fatalf("reader: %d bytes, %v", len(b), err)
	}
	// Two rounds of 20 MiB: flushes, then compactions that remove the
	// tables the reader's view of the first round opened.
	cids := []cid.Cid{first.Cid()}
	for round := range 2 {
		for i := 1; i <= 200; i++ {
			blk := bigBlock(round*200 + i)
			if err := w.Put(ctx, []blocks.Block{blk}); err != nil {
				t.Fatal(err)
			}
			cids = append(cids, blk.Cid())
		}
		for _, c := range cids {
			if ok, err := r.Has(ctx, c); err != nil || !ok {
				t.Fatalf("round %d: reader opened before block %s was written: has %v, %v", round, c, ok, err)
			}
		}
	}
	missing := bigBlock(-1).Cid()
	if ok, err := r.Has(ctx, missing); ok || err != nil {
		t.Fatalf("has a block never written: %v, %v", ok, err)
	}
	if _, err := r.Get(ctx, missing); !errors.Is(err, cas.ErrNotFound) {
		t.Fatalf("get a block never written: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatalf("open the writer while a reader has the store: %v", err)
	}
	w2.Close()
}

// Readers that read while the writer writes get every block the writer
// has stored, and never an error.
func TestReadersReadWhileTheWriterWrites(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	w, err := cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Put(ctx, []blocks.Block{bigBlock(0)}); err != nil {
		t.Fatal(err)
	}
	stored := make(chan cid.Cid, 400)
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { // a reader opened afresh for every tenth block, as fetches do
			defer wg.Done()
			var r *cas.Embedded
			n := 0
			for c := range stored {
				if n%10 == 0 {
					if r != nil {
						r.Close()
					}
					var err error
					if r, err = cas.OpenEmbedded(dir, true); err != nil {
						errc <- fmt.Errorf("open a reader: %w", err)
						return
					}
				}
				n++
				if _, err := r.Get(ctx, c); err != nil {
					errc <- err
					r.Close()
					return
				}
			}
			r.Close()
		}()
	}
	for i := 1; i <= 300; i++ {
		blk := bigBlock(i)
		if err := w.Put(ctx, []blocks.Block{blk}); err != nil {
			t.Fatal(err)
		}
		stored <- blk.Cid()
	}
	close(stored)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}
