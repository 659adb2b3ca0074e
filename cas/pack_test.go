package cas_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"rlog/cas"
	"rlog/internal/vfs/crashfs"
)

// packSet is n blocks of 20-40 KiB, every other one compressible (a
// repeated pattern), the rest random, with the seed logged.
func packSet(t *testing.T, n int) []blocks.Block {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	var out []blocks.Block
	for i := range n {
		b := make([]byte, 20<<10+rng.IntN(20<<10))
		for j := range b {
			if i%2 == 0 {
				b[j] = byte(j % 7)
			} else {
				b[j] = byte(rng.Uint32())
			}
		}
		b[0], b[1] = byte(i), byte(i>>8) // distinct
		out = append(out, blocks.NewBlock(b))
	}
	return out
}

// packedStore opens a store in dir and packs blks in it, synced.
func packedStore(t *testing.T, dir string, blks []blocks.Block) *cas.Embedded {
	t.Helper()
	s, err := cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPacked(context.Background(), blks); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func packFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "packs"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = info.Size()
	}
	return out
}

func mustGetAll(t *testing.T, s *cas.Embedded, blks []blocks.Block) {
	t.Helper()
	ctx := context.Background()
	for _, b := range blks {
		got, err := s.Get(ctx, b.Cid())
		if err != nil || !bytes.Equal(got, b.RawData()) {
			t.Fatalf("get %s: %d bytes (want %d), %v", b.Cid(), len(got), len(b.RawData()), err)
		}
		if ok, err := s.Has(ctx, b.Cid()); err != nil || !ok {
			t.Fatalf("has %s: %v, %v", b.Cid(), ok, err)
		}
	}
}

// TestPackedBlocks: blocks put with PutPacked are read back before and
// after Sync, after the store is opened again, by a read-only store, and
// through the blockstore the gateway serves; they are walked with the
// blocks in the tables, stored once (not again by Put or PutPacked), and
// take less than their size when they compress. Several packs are made.
func TestPackedBlocks(t *testing.T) {
	defer cas.SetPackMax(1 << 20)()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	s, err := cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	all := packSet(t, 120) // about 3.5 MiB: several packs
	tables, packed := all[:20], all[20:]
	if err := s.Put(ctx, tables); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPacked(ctx, packed[:50]); err != nil {
		t.Fatal(err)
	}
	mustGetAll(t, s, packed[:50]) // before Sync
	if err := s.PutPacked(ctx, packed[40:]); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPacked(ctx, tables[:5]); err != nil { // held in the tables
		t.Fatal(err)
	}
	if err := s.Put(ctx, packed[:5]); err != nil { // held in a pack
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	mustGetAll(t, s, all)
	walked := map[string]int{}
	if err := s.Walk(ctx, func(mh multihash.Multihash, size int) error {
		walked[string(mh)]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(walked) != len(all) {
		t.Errorf("walk: %d blocks, want %d", len(walked), len(all))
	}
	for _, b := range all {
		if walked[string(b.Cid().Hash())] != 1 {
			t.Errorf("walk: block %s %d times, want once", b.Cid(), walked[string(b.Cid().Hash())])
		}
	}
	bs := s.Blockstore()
	for _, b := range packed[:3] {
		if n, err := bs.GetSize(ctx, b.Cid()); err != nil || n != len(b.RawData()) {
			t.Errorf("blockstore size of %s: %d, %v; want %d", b.Cid(), n, err, len(b.RawData()))
		}
		if got, err := bs.Get(ctx, b.Cid()); err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
			t.Errorf("blockstore get %s: %v", b.Cid(), err)
		}
	}
	keys, err := bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys {
		n++
	}
	if n != len(all) {
		t.Errorf("blockstore keys: %d, want %d", n, len(all))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := packFiles(t, dir)
	var total, raw int64
	for _, sz := range files {
		total += sz
	}
	for _, b := range packed {
		raw += int64(len(b.RawData()))
	}
	if len(files) < 2 {
		t.Errorf("%d packs, want several (full at 1 MiB)", len(files))
	}
	if total > raw*3/4 {
		t.Errorf("packs take %d bytes for %d of blocks, half of them compressible", total, raw)
	}
	s, err = cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	mustGetAll(t, s, all)
	ro, err := cas.OpenEmbedded(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	mustGetAll(t, ro, all)
	// What the writer packs after the view opened is read too.
	more := packSet(t, 3)
	if err := s.PutPacked(ctx, more); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	mustGetAll(t, ro, more)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPackCrash: a writer killed after PutPacked and before Sync leaves
// records no index entry names: on the next open they are cut off (the
// pack is its committed length again), a pack never committed is
// removed, what was synced before reads back whole, and writing goes on.
func TestPackCrash(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	blks := packSet(t, 40)
	synced, lost := blks[:20], blks[20:]
	s := packedStore(t, dir, synced)
	defer s.Close()
	before := packFiles(t, dir)
	if err := s.PutPacked(ctx, lost); err != nil {
		t.Fatal(err)
	}
	// The crash: the directory as the killed writer left it.
	crashed := filepath.Join(t.TempDir(), "blocks")
	if out, err := exec.Command("cp", "-a", dir, crashed).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	// And a pack made by a writer killed before its first commit.
	if err := os.WriteFile(filepath.Join(crashed, "packs", "00000099.pack"), []byte("rlogpk1\ntorn"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := cas.OpenEmbedded(crashed, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := packFiles(t, crashed); len(got) != len(before) {
		t.Errorf("packs after the crash: %v, want %v", got, before)
	} else {
		for name, size := range before {
			if got[name] != size {
				t.Errorf("pack %s: %d bytes after reopening, want the committed %d", name, got[name], size)
			}
		}
	}
	mustGetAll(t, c, synced)
	for _, b := range lost {
		if ok, err := c.Has(ctx, b.Cid()); err != nil || ok {
			t.Fatalf("has %s, never synced: %v, %v", b.Cid(), ok, err)
		}
	}
	if err := c.PutPacked(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	mustGetAll(t, c, blks)
}

// TestPackDamaged: a record whose bytes changed on disk is an error, never
// other bytes.
func TestPackDamaged(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	blks := packSet(t, 2)
	s := packedStore(t, dir, blks)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "packs", "00000000.pack")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-10] ^= 1 // in the last block's data
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustGetAll(t, s, blks[:1])
	if got, err := s.Get(ctx, blks[1].Cid()); err == nil {
		t.Fatalf("get of a damaged record: %d bytes, no error", len(got))
	}
}

// TestPackCollect: a collection removes packed garbage from the index,
// rewrites a pack mostly garbage into a new one and removes it, gives the
// space back, and every live block reads back, in the writer, after
// reopening, and in a read-only store opened before the collection.
func TestPackCollect(t *testing.T) {
	defer cas.SetPackMax(1 << 20)()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	blks := packSet(t, 100)
	s := packedStore(t, dir, blks)
	ro, err := cas.OpenEmbedded(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	mustGetAll(t, ro, blks)
	var size0 int64
	for _, n := range packFiles(t, dir) {
		size0 += n
	}
	live, dead := map[string]bool{}, blks[:0:0]
	var keep []blocks.Block
	for i, b := range blks {
		if i%5 == 0 {
			live[string(b.Cid().Hash())] = true
			keep = append(keep, b)
		} else {
			dead = append(dead, b)
		}
	}
	res, err := s.Collect(ctx, func(context.Context) (func(multihash.Multihash) bool, error) {
		return func(mh multihash.Multihash) bool { return live[string(mh)] }, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocks != int64(len(dead)) || res.Kept != int64(len(keep)) {
		t.Errorf("collect: removed %d, kept %d; want %d, %d", res.Blocks, res.Kept, len(dead), len(keep))
	}
	var size1 int64
	for _, n := range packFiles(t, dir) {
		size1 += n
	}
	if size1 > size0/3 {
		t.Errorf("packs: %d bytes after collecting 4/5 of %d", size1, size0)
	}
	mustGetAll(t, s, keep)
	mustGetAll(t, ro, keep)
	for _, b := range dead {
		if ok, err := s.Has(ctx, b.Cid()); err != nil || ok {
			t.Fatalf("has %s after it was collected: %v, %v", b.Cid(), ok, err)
		}
		if _, err := s.Get(ctx, b.Cid()); !errors.Is(err, cas.ErrNotFound) {
			t.Fatalf("get %s after it was collected: %v", b.Cid(), err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustGetAll(t, s, keep)
	if _, err := os.Stat(filepath.Join(dir, "packs", "00000000.pack")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the first pack, rewritten, is still there: %v", err)
	}
	// Garbage put again is stored again.
	if err := s.PutPacked(ctx, dead[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	mustGetAll(t, s, dead[:3])
	_ = cid.Undef
}

// TestPackConcurrent: blocks are read while they are being packed (from
// memory, from the pack before the commit, after it), a Load runs beside,
// and every one reads back; the race detector watches.
func TestPackConcurrent(t *testing.T) {
	defer cas.SetPackMax(512 << 10)()
	ctx := context.Background()
	s, err := cas.OpenEmbedded(filepath.Join(t.TempDir(), "blocks"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blks := packSet(t, 60)
	cids, _, get, _ := loadSet(t, 40)
	put := make(chan blocks.Block, len(blks))
	errs := make(chan error, 3)
	go func() {
		defer close(put)
		for i := 0; i < len(blks); i += 6 {
			if err := s.PutPacked(ctx, blks[i:i+6]); err != nil {
				errs <- err
				return
			}
			for _, b := range blks[i : i+6] {
				put <- b
			}
			if i%18 == 0 {
				if err := s.Sync(ctx); err != nil {
					errs <- err
					return
				}
			}
		}
		errs <- s.Sync(ctx)
	}()
	go func() {
		for b := range put {
			got, err := s.Get(ctx, b.Cid())
			if err != nil || !bytes.Equal(got, b.RawData()) {
				errs <- errors.Join(err, errors.New("a packed block read back wrong"))
				return
			}
		}
		errs <- nil
	}()
	go func() {
		_, err := s.Load(ctx, cids, get)
		errs <- err
	}()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mustGetAll(t, s, blks)
}

// TestPutPackedCallerReusesItsBytes: a caller may reuse a block's bytes
// once the next PutPacked or Sync returned (a publish encodes its pages
// into the same buffers). A Get of the block while it was being written
// returned bytes of its own, which the reuse leaves alone.
func TestPutPackedCallerReusesItsBytes(t *testing.T) {
	ctx := context.Background()
	s, err := cas.OpenEmbedded(filepath.Join(t.TempDir(), "blocks"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blk := packSet(t, 1)[0]
	want := bytes.Clone(blk.RawData())
	release := s.HoldWrites()
	if err := s.PutPacked(ctx, []blocks.Block{blk}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, blk.Cid()) // not written yet
	release()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	clear(blk.RawData()) // the caller reuses its buffer
	if !bytes.Equal(got, want) {
		t.Fatal("a Get while the block was written returned the caller's buffer: it changed under the reader")
	}
	if again, err := s.Get(ctx, blk.Cid()); err != nil || !bytes.Equal(again, want) {
		t.Fatalf("read after the caller reused its buffer: %v", err)
	}
}

// Packed blocks synced in a new store survive a power cut that keeps only
// what was synced: the packs directory's entry included, and LevelDB's
// files (the store's LevelDB runs on the same file system).
func TestPackPowerCut(t *testing.T) {
	ctx := context.Background()
	fsys := crashfs.New()
	if err := fsys.MkdirAll("/repo", 0o755); err != nil {
		t.Fatal(err)
	}
	fsys.SyncAll()
	s, err := cas.OpenEmbeddedIn(fsys, "/repo/blocks", false)
	if err != nil {
		t.Fatal(err)
	}
	blks := packSet(t, 10)
	if err := s.PutPacked(ctx, blks); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The repo's state names the blocks: its directory is synced.
	if err := fsys.SyncDir("/repo"); err != nil {
		t.Fatal(err)
	}
	old := fsys
	fsys = fsys.Reboot(nil)
	s.Close() // fails: the power is cut
	if !old.IsCut() {
		t.Fatal("not cut")
	}
	s, err = cas.OpenEmbeddedIn(fsys, "/repo/blocks", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustGetAll(t, s, blks)
}

// TestPackWriteFailureIsKept: a pack write that fails is not forgotten
// when another caller is told of it: the store's Sync fails until the
// blocks lost are put again (a keeper and a publish put to one store; the
// one whose pages were lost must not save a state that names them).
func TestPackWriteFailureIsKept(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	s, err := cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blks := packSet(t, 2)
	a, b := blks[:1], blks[1:]
	packs := filepath.Join(dir, "packs")
	if err := os.Rename(packs, packs+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(packs, nil, 0o644); err != nil { // no pack can be made
		t.Fatal(err)
	}
	if err := s.PutPacked(ctx, a); err != nil { // written later: fails then
		t.Fatal(err)
	}
	if err := s.PutPacked(ctx, b); err == nil { // another caller hears of a's failure
		t.Fatal("the next PutPacked was not told that the write before it failed")
	}
	if err := os.Remove(packs); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(packs+".away", packs); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err == nil {
		t.Fatal("Sync succeeded with a block put and never written")
	}
	if ok, _ := s.Has(ctx, a[0].Cid()); ok {
		t.Fatal("the store says it holds a block whose write failed")
	}
	if err := s.PutPacked(ctx, a); err != nil { // put again: written now
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("Sync after the lost block was put again: %v", err)
	}
	mustGetAll(t, s, a)
}
