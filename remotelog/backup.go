package remotelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/boxo/ipns"
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
	w, err := newBackupCAR(ctx, out, rec)
	if err != nil {
		return res, fmt.Errorf("remotelog: backup %s: %w", name, err)
	}
	tee := &teeSource{src: src, put: func(c cid.Cid, b []byte) error {
		res.Blocks++
		res.Bytes += int64(len(b))
		return w.Put(ctx, c.KeyString(), b)
	}}
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

// newBackupCAR starts a backup file on out for rec's log: its roots and
// its manifest, which is the file's, not the log's, and counted by neither.
func newBackupCAR(ctx context.Context, out io.Writer, rec *namesys.Record) (storage.WritableCar, error) {
	mb, err := manifestEnc.Marshal(manifest{Name: rec.Name.String(), Record: rec.Raw, Version: 1})
	if err != nil {
		return nil, err
	}
	mc, err := pager.PagePrefix.Sum(mb)
	if err != nil {
		return nil, err
	}
	w, err := storage.NewWritable(out, []cid.Cid{rec.Value, mc}, carv2.WriteAsCarV1(true))
	if err != nil {
		return nil, err
	}
	if err := w.Put(ctx, mc.KeyString(), mb); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return w, nil
}

// teeSource hands every block it reads, once verified, to put, once.
type teeSource struct {
	src  Source
	mu   sync.Mutex
	seen map[cid.Cid]struct{}
	put  func(c cid.Cid, b []byte) error
	err  error
}

func (t *teeSource) verifiesBlocks() {}

func (t *teeSource) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := verifying(t.src).Get(ctx, c)
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

// Local says whether the source teed is local.
func (t *teeSource) Local() bool { return isLocal(t.src) }

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
	// Then store exactly those blocks, read again and checked again, and
	// make them durable before any record.
	n, err := storeLog(ctx, store, logBlocks, cas.Verify(src).Get)
	res.Blocks = n
	if err != nil {
		return res, fmt.Errorf("remotelog: restore: store blocks: %w", err)
	}
	if err := syncStore(ctx, store); err != nil {
		return res, fmt.Errorf("remotelog: restore: %w", err)
	}
	res.RecordSaved, err = keepRestored(ctx, names, rec, now)
	return res, err
}

// keepRestored keeps rec, the record of a log whose blocks are all stored,
// if it is newer than the one names holds. A record older than the
// repo's, or the same, stays out (its blocks are stored all the same, as
// a fork's are, for recover). The same sequence with another head is a
// fork: an error, and a store that keeps forks (namesys.Dir) keeps rec
// beside its own for `rlog recover` to merge.
func keepRestored(ctx context.Context, names interface {
	namesys.Publisher
	namesys.Resolver
}, rec *namesys.Record, now func() time.Time) (saved bool, err error) {
	held, err := namesys.Resolve(ctx, names, rec.Name, now())
	if err != nil {
		held = nil // none, or none valid: take the backup's
	}
	cmp := namesys.Compare(held, rec)
	if errors.Is(cmp, ErrFork) {
		if _, ok := names.(namesys.ForkResolver); ok {
			_ = names.Publish(ctx, rec.Name, rec.Raw)
		}
		return false, fmt.Errorf("%w (this repo's record is the one held, and stays; the other is the backup's): one key published two logs, on two devices. In the writer's repo, `rlog recover` merges both (no message is lost) and `rlog publish` supersedes them", cmp)
	}
	if cmp != nil || (held != nil && held.Sequence == rec.Sequence) {
		return false, nil // the repo's record is newer or the same: keep it
	}
	if err := names.Publish(ctx, rec.Name, rec.Raw); err != nil {
		return false, fmt.Errorf("remotelog: restore: save record: %w", err)
	}
	return true, nil
}

// CARSource reads a backup file: its blocks, and its manifest's record for
// its own name.
type CARSource struct {
	*cas.CARFile
	name   ipns.Name
	record []byte
	Head   cid.Cid
}

// Local is true: the blocks are in a file on this machine.
func (*CARSource) Local() bool { return true }

// OpenCARSource opens a backup file written by Backup as a source. Any
// other CAR is ErrNotBackup, saying what it holds; OpenCARBlocks reads one.
func OpenCARSource(_ context.Context, path string) (SourceCloser, error) {
	f, roots, err := openCARRoots(path)
	if err != nil {
		return nil, err
	}
	src, err := openBackup(f, roots)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("remotelog: %s: %w", path, err)
	}
	return src, nil
}

func openCARRoots(path string) (*cas.CARFile, []cid.Cid, error) {
	f, err := cas.OpenCAR(path)
	if err != nil {
		return nil, nil, err
	}
	roots, err := f.Roots()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("remotelog: %s: %w", path, err)
	}
	return f, roots, nil
}

func openBackup(f *cas.CARFile, roots []cid.Cid) (*CARSource, error) {
	if len(roots) != 2 {
		return nil, notBackup(roots, "")
	}
	mb, err := cas.Verify(f).Get(context.Background(), roots[1])
	if errors.Is(err, cas.ErrNotFound) {
		return nil, notBackup(roots, "its second root is not in it")
	}
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var m manifest
	if err := cbor.Unmarshal(mb, &m); err != nil || m.Version != 1 {
		return nil, notBackup(roots, "its second root is not a backup manifest")
	}
	name, err := ipns.NameFromString(m.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest name: %w", ErrInvalidLog, err)
	}
	return &CARSource{CARFile: f, name: name, record: m.Record, Head: roots[0]}, nil
}

// notBackup says what a CAR that is not a backup holds.
func notBackup(roots []cid.Cid, why string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "a backup CAR, as `rlog backup` writes it, has 2 roots: the head page, then a manifest holding the name and its signed record; this file has %d", len(roots))
	if len(roots) == 1 {
		fmt.Fprintf(&b, " root (%s), as `ipfs dag export HEAD` writes", roots[0])
	} else {
		b.WriteString(" roots")
	}
	if why != "" {
		b.WriteString(", and " + why)
	}
	return fmt.Errorf("%w: %s", ErrNotBackup, b.String())
}

// CARBlocks reads the blocks of any CAR file (a plain `ipfs dag export`
// of a log's head): it holds no record, so reading it needs the name's
// record given apart (WithRecord) or a head the caller vouches for
// (ReadOptions.Head). Resolve says so.
type CARBlocks struct {
	*cas.CARFile
	path  string
	Roots []cid.Cid
	why   error
}

// Local is true: the blocks are in a file on this machine.
func (*CARBlocks) Local() bool { return true }

// OpenCARBlocks opens a CAR file for its blocks alone.
func OpenCARBlocks(_ context.Context, path string) (*CARBlocks, error) {
	f, roots, err := openCARRoots(path)
	if err != nil {
		return nil, err
	}
	return &CARBlocks{CARFile: f, path: path, Roots: roots, why: notBackup(roots, "")}, nil
}

// Resolve fails: the file holds no record. The error is ErrNotBackup and
// namesys.ErrNotFound.
func (c *CARBlocks) Resolve(_ context.Context, name ipns.Name) ([]byte, error) {
	return nil, fmt.Errorf("remotelog: %s: %w, so it holds no record for %s (%w)", c.path, c.why, name, namesys.ErrNotFound)
}

// openCAR opens a backup as a source, and any other CAR as its blocks.
func openCAR(ctx context.Context, path string) (SourceCloser, error) {
	src, err := OpenCARSource(ctx, path)
	if errors.Is(err, ErrNotBackup) {
		return OpenCARBlocks(ctx, path)
	}
	return src, err
}

// WithRecord is src with record as the signed record of name (given
// apart from the source, e.g. a file next to a plain CAR). Readers
// verify it as any record.
func WithRecord(src Source, name ipns.Name, record []byte) Source {
	return withRecord{Source: src, name: name, record: record}
}

type withRecord struct {
	Source
	name   ipns.Name
	record []byte
}

// Local says whether the source of the blocks is local.
func (w withRecord) Local() bool { return isLocal(w.Source) }

func (w withRecord) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	if name == w.name {
		return w.record, nil
	}
	return w.Source.Resolve(ctx, name)
}

// Name is the log the backup holds.
func (c *CARSource) Name() ipns.Name { return c.name }

func (c *CARSource) Resolve(_ context.Context, name ipns.Name) ([]byte, error) {
	if name != c.name {
		return nil, fmt.Errorf("remotelog: backup of %s has no record for %s: %w", c.name, name, namesys.ErrNotFound)
	}
	return c.record, nil
}
