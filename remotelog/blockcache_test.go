package remotelog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/remotelog"
)

// countingGetter counts the blocks asked of it.
type countingGetter struct {
	cas.Getter
	gets atomic.Int64
}

func (g *countingGetter) Get(ctx context.Context, k cid.Cid) ([]byte, error) {
	g.gets.Add(1)
	return g.Getter.Get(ctx, k)
}

// cacheBlocks makes n blocks of size bytes in a memory store.
func cacheBlocks(t *testing.T, n, size int) (*countingGetter, []cid.Cid) {
	t.Helper()
	ctx := context.Background()
	m := cas.NewMemory()
	var ks []cid.Cid
	var bs []blocks.Block
	for i := range n {
		b := blocks.NewBlock(fmt.Appendf(make([]byte, 0, size), "%0*d", size, i))
		bs = append(bs, b)
		ks = append(ks, b.Cid())
	}
	if err := m.Put(ctx, bs); err != nil {
		t.Fatal(err)
	}
	return &countingGetter{Getter: m}, ks
}

func dirBytes(t *testing.T, dir string) (n int, size int64) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		info, _ := e.Info()
		n++
		size += info.Size()
	}
	return n, size
}

// A block fetched once is not fetched again, in this process or the next
// (a catch-up killed part way); one whose file was damaged is fetched
// again; Forget removes what the catch-up used.
func TestBlockCacheKeepsWhatItFetched(t *testing.T) {
	ctx := context.Background()
	src, ks := cacheBlocks(t, 10, 1000)
	dir := filepath.Join(t.TempDir(), "blocks")
	c, err := remotelog.CacheBlocks(storeSource{src}, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for _, k := range ks {
			if _, err := c.Get(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := src.gets.Load(); got != 10 {
		t.Fatalf("source asked %d times for 10 blocks read twice, want 10", got)
	}
	// A write killed part way leaves a temporary file; the next cache
	// removes it and knows the 10 blocks.
	if err := os.WriteFile(filepath.Join(dir, ".tmp123"), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	// One block damaged on disk.
	if err := os.WriteFile(filepath.Join(dir, ks[3].String()), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = remotelog.CacheBlocks(storeSource{src}, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		b, err := c.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := cas.Check(k, b); err != nil {
			t.Fatalf("block %s: %v", k, err)
		}
	}
	if got := src.gets.Load(); got != 11 {
		t.Fatalf("source asked %d times, want 11 (the damaged block again)", got)
	}
	if n, _ := dirBytes(t, dir); n != 10 {
		t.Fatalf("%d files in the cache, want the 10 blocks", n)
	}
	c.Forget()
	if n, _ := dirBytes(t, dir); n != 0 {
		t.Fatalf("%d files left after Forget", n)
	}
}

// The cache stays within its bound, removing the oldest blocks first, and
// a cache opened over a folder beyond a smaller bound trims it.
func TestBlockCacheBound(t *testing.T) {
	ctx := context.Background()
	src, ks := cacheBlocks(t, 100, 1000)
	dir := filepath.Join(t.TempDir(), "blocks")
	c, err := remotelog.CacheBlocks(storeSource{src}, dir, 20_000)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range ks {
		if _, err := c.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, size := dirBytes(t, dir); size > 20_000 {
			t.Fatalf("after %d blocks the cache holds %d bytes, over its 20,000", i+1, size)
		}
	}
	// The newest are kept: reading the last block again asks nothing.
	before := src.gets.Load()
	if _, err := c.Get(ctx, ks[99]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, ks[0]); err != nil {
		t.Fatal(err)
	}
	if got := src.gets.Load() - before; got != 1 {
		t.Fatalf("source asked %d times for the newest and the oldest block, want 1 (the oldest)", got)
	}
	if _, err := remotelog.CacheBlocks(storeSource{src}, dir, 5_000); err != nil {
		t.Fatal(err)
	}
	if _, size := dirBytes(t, dir); size > 5_000 {
		t.Fatalf("a cache opened with a bound of 5,000 left %d bytes", size)
	}
}

// A block written again (its file was damaged) is the newest: eviction
// removes older blocks before it.
func TestBlockCacheRewrittenIsNewest(t *testing.T) {
	ctx := context.Background()
	src, ks := cacheBlocks(t, 6, 1000)
	dir := filepath.Join(t.TempDir(), "blocks")
	c, err := remotelog.CacheBlocks(storeSource{src}, dir, 4_500)
	if err != nil {
		t.Fatal(err)
	}
	get := func(k cid.Cid) {
		t.Helper()
		if _, err := c.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range ks[:4] {
		get(k)
	}
	if err := os.WriteFile(filepath.Join(dir, ks[0].String()), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	get(ks[0]) // fetched again and written again: the newest now
	get(ks[4]) // over 4,500: down to 3,375, the oldest removed first
	if _, err := os.Stat(filepath.Join(dir, ks[0].String())); err != nil {
		t.Errorf("the block written again was removed before older ones: %v", err)
	}
	for _, k := range ks[1:3] {
		if _, err := os.Stat(filepath.Join(dir, k.String())); err == nil {
			t.Errorf("block %s, among the oldest, was kept", k)
		}
	}
}

// forgingGetter answers every block with other bytes.
type forgingGetter struct{}

func (forgingGetter) Get(context.Context, cid.Cid) ([]byte, error) { return []byte("forged"), nil }

// A block the source forges is refused and not kept: the cache verifies
// what it hands on, so a reader does not hash it again.
func TestBlockCacheRefusesForgedBlocks(t *testing.T) {
	_, ks := cacheBlocks(t, 1, 1000)
	dir := filepath.Join(t.TempDir(), "blocks")
	c, err := remotelog.CacheBlocks(storeSource{forgingGetter{}}, dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), ks[0]); !errors.Is(err, cas.ErrHashMismatch) {
		t.Fatalf("a forged block: %v, want ErrHashMismatch", err)
	}
	if n, _ := dirBytes(t, dir); n != 0 {
		t.Fatalf("%d files kept of a forged block", n)
	}
}
