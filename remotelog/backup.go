package remotelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/boxo/ipns"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
)

// A backup is a CARv1 file holding every block of a log (pages and
// payloads). Its first root is the head page; its second root is a
// manifest, a DAG-CBOR map {"name": text, "record": bytes, "rlog-backup": 1},
// holding the log's name and the signed record that pointed at the head.

type manifest struct {
	Name    string `cbor:"name"`
	Record  []byte `cbor:"record"`
	Version int    `cbor:"rlog-backup"`
}

var manifestEnc, _ = cbor.CanonicalEncOptions().EncMode()

// BackupResult reports a backup.
type BackupResult struct {
	Head     cid.Cid
	Messages uint64
	Blocks   int
	Bytes    int64
}

// Backup writes log name, read and verified from src, to out as a CAR.
// progress, when set, is called with messages read so far and the total.
func Backup(ctx context.Context, src Source, name ipns.Name, out io.Writer, now func() time.Time, progress func(done, total uint64)) (BackupResult, error) {
	var res BackupResult
	rec, err := namesys.Resolve(ctx, src, name, now())
	if err != nil {
		return res, fmt.Errorf("remotelog: backup %s: %w", name, err)
	}
	mb, err := manifestEnc.Marshal(manifest{Name: name.String(), Record: rec.Raw, Version: 1})
	if err != nil {
		return res, err
	}
	mc, err := pager.PagePrefix.Sum(mb)
	if err != nil {
		return res, err
	}
	w, err := storage.NewWritable(out, []cid.Cid{rec.Value, mc}, carv2.WriteAsCarV1(true))
	if err != nil {
		return res, fmt.Errorf("remotelog: backup %s: %w", name, err)
	}
	tee := &teeSource{src: src, put: func(c cid.Cid, b []byte) error {
		res.Blocks++
		res.Bytes += int64(len(b))
		return w.Put(ctx, c.KeyString(), b)
	}}
	// The manifest is the file's, not the log's: counted by neither.
	if err := w.Put(ctx, mc.KeyString(), mb); err != nil {
		return res, fmt.Errorf("remotelog: backup %s: write: %w", name, err)
	}
	_, st, err := CatchUp(ctx, tee, name, Cursor{}, ReadOptions{Head: rec.Value, Now: now, Whole: true}, func(m Message) error {
		if progress != nil && (m.Seq%4096 == 0) {
			progress(m.Seq, 0)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("remotelog: backup %s: %w", name, err)
	}
	if err := errors.Join(tee.err, w.Finalize()); err != nil {
		return res, fmt.Errorf("remotelog: backup %s: write: %w", name, err)
	}
	res.Head, res.Messages = rec.Value, st.Messages
	return res, nil
}

// teeSource hands every block it reads, once verified, to put, once.
type teeSource struct {
	src  Source
	mu   sync.Mutex
	seen map[cid.Cid]struct{}
	put  func(c cid.Cid, b []byte) error
	err  error
}

func (t *teeSource) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := cas.Verify(t.src).Get(ctx, c)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[cid.Cid]struct{}{}
	}
	if _, ok := t.seen[c]; !ok && t.err == nil {
		t.seen[c] = struct{}{}
		t.err = t.put(c, b)
	}
	return b, t.err
}

func (t *teeSource) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	return t.src.Resolve(ctx, name)
}

// RestoreResult reports a restore.
type RestoreResult struct {
	Name        ipns.Name
	Head        cid.Cid
	Blocks      int
	Messages    uint64
	RecordSeq   uint64
	RecordSaved bool // false when the repo already had the same or a newer record
}

// Restore imports a backup read from r, as RestoreFile does: r is staged
// to a temporary file first, unless it is a regular file.
func Restore(ctx context.Context, r io.Reader, store cas.Store, names interface {
	namesys.Publisher
	namesys.Resolver
}, now func() time.Time) (RestoreResult, error) {
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return RestoreFile(ctx, f.Name(), store, names, now)
		}
	}
	tmp, err := os.CreateTemp("", "rlog-restore-*.car")
	if err != nil {
		return RestoreResult{}, fmt.Errorf("remotelog: restore: stage: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return RestoreResult{}, fmt.Errorf("remotelog: restore: stage: %w", err)
	}
	return RestoreFile(ctx, tmp.Name(), store, names, now)
}

// RestoreFile imports the backup in file path into a store and a name
// store. It reads the file as a source and verifies, before it stores
// anything, the record against the name in the manifest and the whole log
// from the head (every block's hash, every page, every message id). Then
// it stores the log's own blocks, and nothing else the file holds (not
// its manifest), and keeps the record only if it is newer than the one
// already there. A backup that fails verification leaves the store as it
// was. A record with the same sequence as the repo's and another head
// proves a fork: RestoreFile stores the log's blocks, keeps the repo's
// record and fails with ErrFork (a namesys.Dir keeps the backup's record
// as the fork's proof, which `rlog recover` merges). It never touches a
// writer's local log, so restoring into the writer's own repo cannot fork
// the published log.
func RestoreFile(ctx context.Context, path string, store cas.Store, names interface {
	namesys.Publisher
	namesys.Resolver
}, now func() time.Time) (RestoreResult, error) {
	var res RestoreResult
	sc, err := OpenCARSource(ctx, path)
	if err != nil {
		return res, fmt.Errorf("remotelog: restore: %w", err)
	}
	defer sc.Close()
	src := sc.(*CARSource)
	name := src.Name()
	rec, err := namesys.Parse(name, src.record, now())
	if err != nil {
		return res, fmt.Errorf("remotelog: restore: %w", err)
	}
	if !rec.Value.Equals(src.Head) {
		return res, fmt.Errorf("remotelog: restore: %w: the record points at %s, the backup's head is %s", ErrInvalidLog, rec.Value, src.Head)
	}
	// Verify the whole log first, noting the blocks it is made of.
	var logBlocks []cid.Cid
	tee := &teeSource{src: src, put: func(c cid.Cid, _ []byte) error {
		logBlocks = append(logBlocks, c)
		return nil
	}}
	_, st, err := CatchUp(ctx, tee, name, Cursor{}, ReadOptions{Head: src.Head, Now: now, Whole: true}, func(Message) error { return nil })
	if err != nil {
		return res, fmt.Errorf("remotelog: restore: the backup's log does not verify: %w", err)
	}
	res.Name, res.Head, res.Messages, res.RecordSeq = name, src.Head, st.Messages, rec.Sequence
	held, err := namesys.Resolve(ctx, names, name, now())
	if err != nil {
		held = nil // none, or none valid: take the backup's
	}
	cmp := namesys.Compare(held, rec)
	// A record older than the repo's, or the same, stays out; the backup's
	// blocks are stored all the same (as a fork's are, for recover).
	newer := cmp == nil && (held == nil || held.Sequence != rec.Sequence)
	// Then store exactly those blocks, read again and checked again, in
	// bounded batches, and make them durable before any record.
	n, err := copyBlocks(ctx, cas.Verify(src), store, logBlocks)
	res.Blocks = n
	if err != nil {
		return res, fmt.Errorf("remotelog: restore: store blocks: %w", err)
	}
	if err := syncStore(ctx, store); err != nil {
		return res, fmt.Errorf("remotelog: restore: %w", err)
	}
	if errors.Is(cmp, ErrFork) {
		// A store that keeps forks (namesys.Dir) refuses the record but
		// keeps it beside its own, for `rlog recover` to merge.
		if _, ok := names.(namesys.ForkResolver); ok {
			_ = names.Publish(ctx, name, src.record)
		}
		return res, fmt.Errorf("%w (this repo's record is the one held, and stays; the other is the backup's): one key published two logs, on two devices. In the writer's repo, `rlog recover` merges both (no message is lost) and `rlog publish` supersedes them", cmp)
	}
	if !newer {
		return res, nil // the repo's record is newer or the same: keep it
	}
	if err := names.Publish(ctx, name, src.record); err != nil {
		return res, fmt.Errorf("remotelog: restore: save record: %w", err)
	}
	res.RecordSaved = true
	return res, nil
}

// copyBlocks puts the blocks cids from src into dst, in batches of at most
// cas.PutBatch bytes, and returns how many it put.
func copyBlocks(ctx context.Context, src cas.Getter, dst cas.Store, cids []cid.Cid) (int, error) {
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
		b, err := src.Get(ctx, c)
		if err != nil {
			return n, err
		}
		batch = append(batch, cas.NewBlock(c, b))
		if size += len(b); size >= cas.PutBatch {
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

// CARSource reads a backup file: its blocks, and its manifest's record for
// its own name.
type CARSource struct {
	*cas.CARFile
	name   ipns.Name
	record []byte
	Head   cid.Cid
}

// OpenCARSource opens a backup file written by Backup as a source.
func OpenCARSource(_ context.Context, path string) (SourceCloser, error) {
	f, err := cas.OpenCAR(path)
	if err != nil {
		return nil, err
	}
	roots, err := f.Roots()
	if err != nil || len(roots) != 2 {
		f.Close()
		return nil, fmt.Errorf("remotelog: %s: %w: not an rlog backup (want 2 roots: head, manifest; %v)", path, ErrInvalidLog, err)
	}
	mb, err := cas.Verify(f).Get(context.Background(), roots[1])
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("remotelog: %s: manifest: %w", path, err)
	}
	var m manifest
	if err := cbor.Unmarshal(mb, &m); err != nil || m.Version != 1 {
		f.Close()
		return nil, fmt.Errorf("remotelog: %s: %w: not an rlog backup manifest (%v)", path, ErrInvalidLog, err)
	}
	name, err := ipns.NameFromString(m.Name)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("remotelog: %s: manifest name: %w", path, err)
	}
	return &CARSource{CARFile: f, name: name, record: m.Record, Head: roots[0]}, nil
}

// Name is the log the backup holds.
func (c *CARSource) Name() ipns.Name { return c.name }

func (c *CARSource) Resolve(_ context.Context, name ipns.Name) ([]byte, error) {
	if name != c.name {
		return nil, fmt.Errorf("remotelog: backup of %s has no record for %s: %w", c.name, name, namesys.ErrNotFound)
	}
	return c.record, nil
}
