package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

func backupOf(t *testing.T, w *world) []byte {
	t.Helper()
	var buf bytes.Buffer
	res, err := remotelog.Backup(context.Background(), w, w.w.Name(), &buf, w.clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != w.w.Len() {
		t.Fatalf("backup holds %d messages, the log %d", res.Messages, w.w.Len())
	}
	return buf.Bytes()
}

func TestBackupRestoreCheck(t *testing.T) {
	w := newWorld(t, small(t))
	big := bytes.Repeat([]byte("payload "), 100<<10) // 800 KiB: a UnixFS file
	w.appendN(t, 0, 57, 0)
	w.w.Append(context.Background(), group, [][]byte{big})
	w.publish(t)
	car := backupOf(t, w)
	ctx := context.Background()

	// The file checks clean, and reads as a source.
	path := filepath.Join(t.TempDir(), "log.car")
	os.WriteFile(path, car, 0o644)
	src, err := remotelog.OpenCARSource(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cs := src.(*remotelog.CARSource)
	rep := remotelog.Check(ctx, cs, cs.Name(), cs.Head, w.clock.Now)
	if !rep.OK() || rep.Messages != 58 {
		t.Fatalf("check of a good backup: %+v", rep)
	}
	got, _, err := readAll(t, cs, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil || len(got) != 58 || !bytes.Equal(got[57].Body, big) {
		t.Fatalf("read the backup: %d messages, %v", len(got), err)
	}
	src.Close()

	// Restore into an empty repo: every block verified, the log readable.
	store, names := cas.NewMemory(), namesys.NewMemory()
	res, err := remotelog.Restore(ctx, bytes.NewReader(car), store, names, w.clock.Now)
	if err != nil || !res.RecordSaved || res.Messages != 58 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	got, _, err = readAll(t, struct {
		cas.Getter
		namesys.Resolver
	}{store, names}, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil || len(got) != 58 {
		t.Fatalf("read the restored log: %d, %v", len(got), err)
	}

	// A damaged backup: check names the problem, restore refuses it.
	bad := bytes.Replace(append([]byte(nil), car...), []byte("message 000042"), []byte("massage 000042"), 1)
	os.WriteFile(path, bad, 0o644)
	src, err = remotelog.OpenCARSource(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cs = src.(*remotelog.CARSource)
	rep = remotelog.Check(ctx, cs, cs.Name(), cs.Head, w.clock.Now)
	if rep.OK() || rep.Findings[0].Kind != "hash-mismatch" {
		t.Fatalf("check of a damaged backup: %+v", rep.Findings)
	}
	src.Close()
	empty := cas.NewMemory()
	if _, err := remotelog.Restore(ctx, bytes.NewReader(bad), empty, namesys.NewMemory(), w.clock.Now); err == nil || empty.Len() != 0 {
		t.Fatalf("restore of a damaged backup: %v, %d blocks stored", err, empty.Len())
	}
}

// TestRestoreOldBackupIntoWriterNeverForks: the writer's own repo gets an
// old backup back; its newer record stays, publishing goes on, and a
// reader sees no fork.
func TestRestoreOldBackupIntoWriterNeverForks(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 20, 0)
	w.publish(t)
	old := backupOf(t, w)
	_, cur, err := readAll(t, w, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.appendN(t, 20, 15, 0)
	w.publish(t)
	res, err := remotelog.Restore(context.Background(), bytes.NewReader(old), w.store, w.names, w.clock.Now)
	if err != nil || res.RecordSaved {
		t.Fatalf("restore of an old backup: saved=%v %v", res.RecordSaved, err)
	}
	w.appendN(t, 35, 1, 0)
	if _, err := w.w.Publish(context.Background(), remotelog.PublishOptions{}); err != nil {
		t.Fatalf("publish after restoring an old backup: %v", err)
	}
	got, _, err := readAll(t, w, w.w.Name(), cur, remotelog.ReadOptions{Now: w.clock.Now})
	if errors.Is(err, remotelog.ErrFork) || err != nil || len(got) != 16 {
		t.Fatalf("reader after the restore: %d messages, %v", len(got), err)
	}
}

// carBlocks reads a CAR's roots and blocks, in file order.
func carBlocks(t *testing.T, car []byte) ([]cid.Cid, []blocks.Block) {
	t.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(car))
	if err != nil {
		t.Fatal(err)
	}
	var bs []blocks.Block
	for {
		b, err := br.Next()
		if err == io.EOF {
			return br.Roots, bs
		}
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
}

// writeCAR writes blocks as given, unchecked: a crafted file.
func writeCAR(t *testing.T, roots []cid.Cid, bs []blocks.Block) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, roots, carv2.WriteAsCarV1(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := w.Put(context.Background(), b.Cid().KeyString(), b.RawData()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finalize(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRestoreStoresOnlyAVerifiedLog: restore verifies before it stores. A
// backup with a forged record or a damaged block leaves the store as it
// was; a good one with other blocks in it stores the log's blocks only.
func TestRestoreStoresOnlyAVerifiedLog(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 40, 0)
	w.w.Append(context.Background(), group, [][]byte{bytes.Repeat([]byte("payload "), 20<<10)}) // one raw block
	w.publish(t)
	car := backupOf(t, w)
	roots, bs := carBlocks(t, car)
	ctx := context.Background()
	junk := make([]blocks.Block, 80) // 5 MiB: more than one batch of puts
	for i := range junk {
		b := bytes.Repeat([]byte{byte(i)}, 64<<10)
		c, _ := pager.RawPrefix.Sum(b)
		junk[i] = cas.NewBlock(c, b)
	}
	restore := func(file []byte) (*cas.Memory, remotelog.RestoreResult, error) {
		t.Helper()
		store := cas.NewMemory()
		res, err := remotelog.Restore(ctx, bytes.NewReader(file), store, namesys.NewMemory(), w.clock.Now)
		return store, res, err
	}

	// A forged record (one byte of its signature changed), with junk.
	var m struct {
		Name    string `cbor:"name"`
		Record  []byte `cbor:"record"`
		Version int    `cbor:"rlog-backup"`
	}
	if err := cbor.Unmarshal(bs[0].RawData(), &m); err != nil || !bs[0].Cid().Equals(roots[1]) {
		t.Fatalf("the manifest is not the first block: %v", err)
	}
	m.Record[len(m.Record)-5] ^= 1
	mb, _ := cbor.Marshal(m)
	mc, _ := pager.PagePrefix.Sum(mb)
	forged := writeCAR(t, []cid.Cid{roots[0], mc}, append(append([]blocks.Block{cas.NewBlock(mc, mb)}, junk...), bs[1:]...))
	if store, _, err := restore(forged); err == nil || store.Len() != 0 {
		t.Fatalf("restore of a forged record: %v, %d blocks stored", err, store.Len())
	}

	// The last block (the payload) damaged, after junk.
	last := bs[len(bs)-1]
	if last.Cid().Prefix().Codec != cid.Raw {
		t.Fatalf("the last block of the backup is not the payload: %s", last.Cid())
	}
	bad := append([]byte(nil), last.RawData()...)
	bad[len(bad)/2] ^= 1
	damaged := writeCAR(t, roots, append(append(append([]blocks.Block(nil), bs[:len(bs)-1]...), junk...), cas.NewBlock(last.Cid(), bad)))
	if store, _, err := restore(damaged); !errors.Is(err, cas.ErrHashMismatch) || store.Len() != 0 {
		t.Fatalf("restore of a damaged backup: %v, %d blocks stored", err, store.Len())
	}

	// A good backup with junk: the log's blocks are stored, nothing else.
	extra := writeCAR(t, roots, append(append([]blocks.Block(nil), bs...), junk...))
	store, res, err := restore(extra)
	if err != nil || !res.RecordSaved || res.Messages != 41 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if store.Len() != len(bs)-1 || res.Blocks != len(bs)-1 {
		t.Fatalf("restore stored %d blocks (said %d); the log has %d", store.Len(), res.Blocks, len(bs)-1)
	}
	for _, b := range bs[1:] {
		if ok, _ := store.Has(ctx, b.Cid()); !ok {
			t.Fatalf("block %s of the log not stored", b.Cid())
		}
	}
}
