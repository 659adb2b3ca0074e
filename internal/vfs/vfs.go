// Package vfs is the file-system seam of the writer's durable files: the
// journal, the block store's packs and the repo's small state files go
// through an FS, which is the real one (OS) but in the power-cut tests,
// where it is an in-memory file system that forgets what was not synced
// (package crashfs).
//
// It holds only the operations those files use: open or create, read,
// write, sync, truncate, rename, remove, make a directory and sync one.
//
//	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
//	...
//	err = f.Sync()
//	err = fsys.SyncDir(filepath.Dir(path)) // the new entry is durable now
package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// File is an open file. Sync makes its content durable; its directory
// entry is durable once its directory is synced (FS.SyncDir).
type File interface {
	io.Reader
	io.Writer
	io.ReaderAt
	io.WriterAt
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Chmod(mode fs.FileMode) error
	Name() string
}

// FS is a file system. Entries made, renamed or removed (OpenFile with
// os.O_CREATE, Mkdir, MkdirAll, Rename, Remove, RemoveAll) are durable
// only once their directory is synced. Errors are *fs.PathError or
// *os.LinkError as the os package's, so errors.Is(err, fs.ErrNotExist)
// and fs.ErrExist work.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Stat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Mkdir(name string, perm fs.FileMode) error
	MkdirAll(name string, perm fs.FileMode) error
	Rename(oldpath, newpath string) error
	Remove(name string) error
	RemoveAll(name string) error
	SyncDir(name string) error
}

// OS is the real file system.
type OS struct{}

func (OS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil
	}
	return f, nil
}

func (OS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (OS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (OS) Mkdir(name string, perm fs.FileMode) error    { return os.Mkdir(name, perm) }
func (OS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (OS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (OS) Remove(name string) error                     { return os.Remove(name) }
func (OS) RemoveAll(name string) error                  { return os.RemoveAll(name) }

func (OS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Or is fsys, or OS when fsys is nil (a config's zero value).
func Or(fsys FS) FS {
	if fsys == nil {
		return OS{}
	}
	return fsys
}

// ReadFile reads the whole file name.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	return b, errors.Join(err, f.Close())
}
