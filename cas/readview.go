package cas

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
)

// A readView reads a LevelDB store that another process may be writing,
// without taking LevelDB's lock. goleveldb locks a directory even to read
// it (flock, shared for readers, exclusive for the writer), so a reader of
// a repo folder and the folder's writer used to lock each other out: a
// fetch failed while an append ran, and an append failed while a fetch
// read. Readers now take no lock at all and never stop the writer.
//
// Reading without the lock is safe because of how LevelDB changes its
// files: tables are written once and never changed, the manifest and the
// journal only grow, CURRENT is replaced by a rename, and a file is
// removed only after a newer manifest stopped naming it. A view is what
// the files said when it was opened (a torn record at the end of the
// journal or manifest, one the writer is still writing, is left out, as in
// a crash). It can fall behind the writer, or lose a table that a
// compaction removed; so when a read misses or fails and the directory has
// changed since the view was opened, the view is opened again and the read
// retried. A miss on a directory that has not changed is an answer.
type readView struct {
	dir string

	mu sync.RWMutex // held for reading while db is in use
	db *leveldb.DB
	fp string // the directory's fingerprint before db was opened
}

// readViewTries bounds the reopenings of one open or one read while the
// writer keeps changing the directory under it.
const readViewTries = 20

func openReadView(dir string) (*readView, error) {
	db, fp, err := openViewDB(context.Background(), dir)
	if err != nil {
		return nil, err
	}
	return &readView{dir: dir, db: db, fp: fp}, nil
}

// openViewDB opens a view, again while the directory changes under it.
func openViewDB(ctx context.Context, dir string) (*leveldb.DB, string, error) {
	delay := time.Millisecond
	for try := 1; ; try++ {
		fp, err := fingerprint(dir)
		if err != nil {
			return nil, "", err
		}
		db, err := leveldb.Open(roStorage{dir}, &opt.Options{
			ReadOnly: true, ErrorIfMissing: true,
			// A view reads pages once each, in order: small buffers keep a
			// reader's memory bounded (LevelDB's defaults: a 4 MiB memtable
			// preallocated to replay the journal, an 8 MiB block cache).
			WriteBuffer:        256 << 10,
			BlockCacheCapacity: 1 << 20,
			// Not strict about the journal: a torn record at its end, one
			// the writer is writing, is left out (and so is the padding
			// between joined journals, see openJournals).
			Strict: opt.DefaultStrict &^ opt.StrictJournal,
		})
		if err == nil {
			return db, fp, nil
		}
		if fp2, ferr := fingerprint(dir); ferr != nil || fp2 == fp || try == readViewTries {
			return nil, "", err // the directory holds still: a real error
		}
		if err := pause(ctx, delay); err != nil {
			return nil, "", err
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// peek reads key in the view as it is, never opening it again:
// leveldb.ErrNotFound when this view does not hold it.
func (v *readView) peek(key []byte) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.db.Get(key, nil)
}

// get reads key; leveldb.ErrNotFound when the store does not hold it.
func (v *readView) get(ctx context.Context, key []byte) ([]byte, error) {
	for try := 1; ; try++ {
		v.mu.RLock()
		db, fp := v.db, v.fp
		b, err := db.Get(key, nil)
		v.mu.RUnlock()
		if err == nil {
			return b, nil
		}
		if try == readViewTries {
			return nil, err
		}
		changed, rerr := v.refresh(ctx, fp)
		if rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		if !changed {
			return nil, err
		}
	}
}

// refresh opens the view again if the directory changed since the view
// whose fingerprint is fp was opened; it says whether there is a newer
// view to read.
func (v *readView) refresh(ctx context.Context, fp string) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.fp != fp {
		return true, nil // another read opened a newer one
	}
	now, err := fingerprint(v.dir)
	if err != nil {
		return false, err
	}
	if now == fp {
		return false, nil
	}
	db, nfp, err := openViewDB(ctx, v.dir)
	if err != nil {
		return false, err
	}
	v.db.Close()
	v.db, v.fp = db, nfp
	return true, nil
}

// fingerprint is the fingerprint of the view read now.
func (v *readView) fingerprint() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.fp
}

func (v *readView) close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.db.Close()
}

// fingerprint changes whenever LevelDB's files in dir do: the set of
// files, and the size of those that grow (journals, manifests).
func fingerprint(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("cas: store %s: %w", dir, err)
	}
	var parts []string
	for _, e := range ents {
		fd, ok := parseName(e.Name())
		if !ok && e.Name() != "CURRENT" {
			continue
		}
		p := e.Name()
		if fd.Type != storage.TypeTable {
			st, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("cas: store %s: %w", dir, err)
			}
			p += ":" + strconv.FormatInt(st.Size(), 10) + ":" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
		}
		parts = append(parts, p)
	}
	sort.Strings(parts)
	return strings.Join(parts, " "), nil
}

// roStorage is a goleveldb storage that only reads, and takes no lock.
type roStorage struct{ dir string }

var errROStorage = errors.New("cas: read-only view of a store")

type nopLocker struct{}

func (nopLocker) Unlock() {}

func (roStorage) Lock() (storage.Locker, error)                   { return nopLocker{}, nil }
func (roStorage) Log(string)                                      {}
func (roStorage) SetMeta(storage.FileDesc) error                  { return errROStorage }
func (roStorage) Create(storage.FileDesc) (storage.Writer, error) { return nil, errROStorage }
func (roStorage) Remove(storage.FileDesc) error                   { return errROStorage }
func (roStorage) Rename(_, _ storage.FileDesc) error              { return errROStorage }
func (roStorage) Close() error                                    { return nil }

// GetMeta reads CURRENT, which the writer replaces by a rename: never torn.
func (s roStorage) GetMeta() (storage.FileDesc, error) {
	return parseCurrent(os.ReadFile(filepath.Join(s.dir, "CURRENT")))
}

// parseCurrent reads the content of CURRENT, read with error err:
// os.ErrNotExist when there is none (a new store).
func parseCurrent(b []byte, err error) (storage.FileDesc, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return storage.FileDesc{}, os.ErrNotExist
	}
	if err != nil {
		return storage.FileDesc{}, err
	}
	fd, ok := parseName(strings.TrimSuffix(string(b), "\n"))
	if !ok || fd.Type != storage.TypeManifest || !strings.HasSuffix(string(b), "\n") {
		return storage.FileDesc{}, &storage.ErrCorrupted{Err: fmt.Errorf("CURRENT: %q", b)}
	}
	return fd, nil
}

// List lists the files of types ft, journals aside: it names only the
// newest journal, whose Open reads them all (see openJournals).
func (s roStorage) List(ft storage.FileType) ([]storage.FileDesc, error) {
	fds, err := s.list(ft)
	if err != nil || ft&storage.TypeJournal == 0 {
		return fds, err
	}
	var out []storage.FileDesc
	var newest *storage.FileDesc
	for _, fd := range fds {
		if fd.Type != storage.TypeJournal {
			out = append(out, fd)
		} else if newest == nil || fd.Num > newest.Num {
			newest = &fd
		}
	}
	if newest != nil {
		out = append(out, *newest)
	}
	return out, nil
}

func (s roStorage) list(ft storage.FileType) ([]storage.FileDesc, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	return fdsOf(ents, ft), nil
}

// fdsOf are LevelDB's files of types ft among ents.
func fdsOf(ents []fs.DirEntry, ft storage.FileType) []storage.FileDesc {
	var fds []storage.FileDesc
	for _, e := range ents {
		if fd, ok := parseName(e.Name()); ok && fd.Type&ft != 0 {
			fds = append(fds, fd)
		}
	}
	return fds
}

func (s roStorage) Open(fd storage.FileDesc) (storage.Reader, error) {
	if fd.Type == storage.TypeJournal {
		return s.openJournals(fd.Num)
	}
	return s.open(fd)
}

// journalBlock is the block size of LevelDB's journal format.
const journalBlock = 32 << 10

// openJournals reads every journal up to number last as one journal. While
// the writer flushes its memory table, there are two journals; goleveldb,
// read-only, fails on the second one it replays (the journal reader's
// Reset returns the io.EOF left by the first). So the journals are joined:
// each but the last padded with zeros to a whole block, which the journal
// reader drops as a zero header before it reads on. Journals before the
// one the manifest names are replayed too, which changes nothing: they
// hold writes that are in the tables already, and the store's blocks are
// written once, under their hash.
func (s roStorage) openJournals(last int64) (storage.Reader, error) {
	fds, err := s.list(storage.TypeJournal)
	if err != nil {
		return nil, err
	}
	sort.Slice(fds, func(i, j int) bool { return fds[i].Num < fds[j].Num })
	j := &joinedJournal{}
	var parts []io.Reader
	for _, fd := range fds {
		if fd.Num > last {
			break
		}
		r, err := s.open(fd)
		if err != nil {
			j.Close()
			return nil, err
		}
		f := r.(*os.File)
		j.files = append(j.files, f)
		if fd.Num == last {
			parts = append(parts, f)
			break
		}
		st, err := f.Stat()
		if err != nil {
			j.Close()
			return nil, err
		}
		n := st.Size()
		pad := (journalBlock - n%journalBlock) % journalBlock
		parts = append(parts, io.LimitReader(f, n), io.LimitReader(zeros{}, pad))
	}
	j.Reader = io.MultiReader(parts...)
	return j, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// joinedJournal is journals read in a row; it is only read through.
type joinedJournal struct {
	io.Reader
	files []*os.File
}

func (j *joinedJournal) Seek(int64, int) (int64, error)    { return 0, errROStorage }
func (j *joinedJournal) ReadAt([]byte, int64) (int, error) { return 0, errROStorage }
func (j *joinedJournal) Close() error {
	var errs []error
	for _, f := range j.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

func (s roStorage) open(fd storage.FileDesc) (storage.Reader, error) {
	f, err := os.Open(filepath.Join(s.dir, fd.String()))
	if errors.Is(err, fs.ErrNotExist) && fd.Type == storage.TypeTable {
		f, err = os.Open(filepath.Join(s.dir, fmt.Sprintf("%06d.sst", fd.Num)))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, os.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// parseName reads LevelDB's file names as goleveldb writes them.
func parseName(name string) (storage.FileDesc, bool) {
	if rest, ok := strings.CutPrefix(name, "MANIFEST-"); ok {
		n, err := strconv.ParseInt(rest, 10, 64)
		return storage.FileDesc{Type: storage.TypeManifest, Num: n}, err == nil && n >= 0
	}
	num, ext, ok := strings.Cut(name, ".")
	if !ok {
		return storage.FileDesc{}, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return storage.FileDesc{}, false
	}
	switch ext {
	case "log":
		return storage.FileDesc{Type: storage.TypeJournal, Num: n}, true
	case "ldb", "sst":
		return storage.FileDesc{Type: storage.TypeTable, Num: n}, true
	case "tmp":
		return storage.FileDesc{Type: storage.TypeTemp, Num: n}, true
	}
	return storage.FileDesc{}, false
}
