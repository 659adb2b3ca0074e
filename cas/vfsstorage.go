package cas

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	goleveldb "github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"

	"rlog/internal/vfs"
)

// vfsStorage is a goleveldb storage in a vfs.FS, so that a store opened
// with OpenEmbeddedIn keeps its LevelDB there too (the power-cut test). It
// syncs as goleveldb's file storage does: a file when LevelDB asks, and
// the directory after a manifest is synced and after CURRENT is replaced.
// Its lock holds within the process only.
type vfsStorage struct {
	fs  vfs.FS
	dir string

	mu     sync.Mutex
	locked bool
}

func newVFSStorage(fsys vfs.FS, dir string) (*vfsStorage, error) {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &vfsStorage{fs: fsys, dir: dir}, nil
}

type vfsLock struct{ s *vfsStorage }

func (l vfsLock) Unlock() {
	l.s.mu.Lock()
	l.s.locked = false
	l.s.mu.Unlock()
}

func (s *vfsStorage) Lock() (storage.Locker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked {
		return nil, storage.ErrLocked
	}
	s.locked = true
	return vfsLock{s}, nil
}

func (s *vfsStorage) Log(string)   {}
func (s *vfsStorage) Close() error { return nil }

func (s *vfsStorage) path(fd storage.FileDesc) string { return filepath.Join(s.dir, fd.String()) }

// SetMeta makes CURRENT name the manifest fd, durably.
func (s *vfsStorage) SetMeta(fd storage.FileDesc) error {
	tmp := filepath.Join(s.dir, "CURRENT.tmp")
	f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(fd.String() + "\n"))
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	if err := s.fs.Rename(tmp, filepath.Join(s.dir, "CURRENT")); err != nil {
		return err
	}
	return s.fs.SyncDir(s.dir)
}

// GetMeta reads CURRENT: os.ErrNotExist for a new store, a corruption
// when it names no manifest.
func (s *vfsStorage) GetMeta() (storage.FileDesc, error) {
	fd, err := parseCurrent(vfs.ReadFile(s.fs, filepath.Join(s.dir, "CURRENT")))
	if err != nil {
		return fd, err
	}
	if _, err := s.fs.Stat(s.path(fd)); err != nil {
		return storage.FileDesc{}, &storage.ErrCorrupted{Fd: fd, Err: err}
	}
	return fd, nil
}

func (s *vfsStorage) List(ft storage.FileType) ([]storage.FileDesc, error) {
	ents, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	return fdsOf(ents, ft), nil
}

func (s *vfsStorage) Open(fd storage.FileDesc) (storage.Reader, error) {
	f, err := s.fs.OpenFile(s.path(fd), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, os.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return vfsReader{io.NewSectionReader(f, 0, st.Size()), f}, nil
}

type vfsReader struct {
	*io.SectionReader
	io.Closer
}

func (s *vfsStorage) Create(fd storage.FileDesc) (storage.Writer, error) {
	f, err := s.fs.OpenFile(s.path(fd), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return vfsWriter{f, s, fd}, nil
}

type vfsWriter struct {
	vfs.File
	s  *vfsStorage
	fd storage.FileDesc
}

// Sync syncs the file, and the directory after a manifest, as goleveldb's
// file storage does.
func (w vfsWriter) Sync() error {
	if err := w.File.Sync(); err != nil {
		return err
	}
	if w.fd.Type == storage.TypeManifest {
		return w.s.fs.SyncDir(w.s.dir)
	}
	return nil
}

func (s *vfsStorage) Remove(fd storage.FileDesc) error { return s.fs.Remove(s.path(fd)) }

func (s *vfsStorage) Rename(oldfd, newfd storage.FileDesc) error {
	return s.fs.Rename(s.path(oldfd), s.path(newfd))
}

// openLevelDB opens the LevelDB in dir: in the real file system as
// go-ds-leveldb did (recovered when corrupt), else in fsys.
func openLevelDB(fsys vfs.FS, dir string, opts *opt.Options) (*goleveldb.DB, error) {
	if _, ok := fsys.(vfs.OS); ok {
		db, err := goleveldb.OpenFile(dir, opts)
		if lerrors.IsCorrupted(err) {
			db, err = goleveldb.RecoverFile(dir, opts)
		}
		return db, err
	}
	stor, err := newVFSStorage(fsys, dir)
	if err != nil {
		return nil, err
	}
	db, err := goleveldb.Open(stor, opts)
	if lerrors.IsCorrupted(err) {
		db, err = goleveldb.Recover(stor, opts)
	}
	return db, err
}
