package cas_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
)

// loadSet is n random blocks of 32 KiB (several PutBatch batches), their
// CIDs in a random order, and a getter counting its reads.
func loadSet(t *testing.T, n int) ([]cid.Cid, map[cid.Cid][]byte, func(context.Context, cid.Cid) ([]byte, error), *atomic.Int64) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	data := map[cid.Cid][]byte{}
	var cids []cid.Cid
	for range n {
		b := make([]byte, 32<<10)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		blk := blocks.NewBlock(b)
		data[blk.Cid()] = b
		cids = append(cids, blk.Cid())
	}
	var reads atomic.Int64
	get := func(_ context.Context, c cid.Cid) ([]byte, error) {
		reads.Add(1)
		b, ok := data[c]
		if !ok {
			return nil, cas.ErrNotFound
		}
		return b, nil
	}
	return cids, data, get, &reads
}

// TestEmbeddedLoad: Load stores every block it lacks, reads none it holds,
// counts each CID once however often listed, and leaves nothing of what
// it stored in the journal only: all of it is in synced tables when it
// returns (LevelDB syncs a table before the manifest names it), so a
// power cut after Load loses none of it.
func TestEmbeddedLoad(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	s, err := cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	cids, data, get, reads := loadSet(t, 400) // 12.5 MiB: several memtables
	held := cids[:10]
	for _, c := range held {
		if err := s.Put(ctx, []blocks.Block{cas.NewBlock(c, data[c])}); err != nil {
			t.Fatal(err)
		}
	}
	list := append(append([]cid.Cid{}, cids...), cids[20:30]...) // listed twice
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	n, err := s.Load(ctx, list, get)
	if err != nil || n != len(list) {
		t.Fatalf("load: %d of %d, %v", n, len(list), err)
	}
	if got, want := reads.Load(), int64(len(cids)-len(held)); got != want {
		t.Errorf("load read %d blocks, want %d (those not held, once each)", got, want)
	}
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		if fi, err := os.Stat(l); err != nil || fi.Size() >= 32<<10 {
			t.Errorf("journal %s holds %d bytes after Load (%v): blocks not yet in synced tables", filepath.Base(l), fi.Size(), err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := cas.OpenEmbedded(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, c := range cids {
		if b, err := ro.Get(ctx, c); err != nil || string(b) != string(data[c]) {
			t.Fatalf("get %s after reopen: %d bytes, %v", c, len(b), err)
		}
	}
}

// TestEmbeddedLoadFails: a block that cannot be read fails Load, naming
// the store; what it stored before stays readable and a second Load
// completes.
func TestEmbeddedLoadFails(t *testing.T) {
	ctx := context.Background()
	s, err := cas.OpenEmbedded(filepath.Join(t.TempDir(), "blocks"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cids, _, get, _ := loadSet(t, 300)
	broken := errors.New("disk says no")
	failing := func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if c == cids[150] {
			return nil, broken
		}
		return get(ctx, c)
	}
	if _, err := s.Load(ctx, cids, failing); !errors.Is(err, broken) || !strings.Contains(err.Error(), "load") {
		t.Fatalf("load with an unreadable block: %v", err)
	}
	if n, err := s.Load(ctx, cids, get); err != nil || n != len(cids) {
		t.Fatalf("second load: %d, %v", n, err)
	}
	for _, c := range cids {
		if ok, err := s.Has(ctx, c); err != nil || !ok {
			t.Fatalf("has %s: %v %v", c, ok, err)
		}
	}
}
