package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"rlog/internal/vfs"
)

// Write replaces path with data, durably: when it returns, a crash leaves
// the new content.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteIn(vfs.OS{}, path, data, perm)
}

// WriteIn is Write in fsys.
func WriteIn(fsys vfs.FS, path string, data []byte, perm os.FileMode) error {
	if err := ReplaceIn(fsys, path, data, perm); err != nil {
		return err
	}
	return SyncDirIn(fsys, filepath.Dir(path))
}

// Replace replaces path with data atomically but does not wait for the
// rename to be durable: after an operating-system crash either content may
// be there, never a torn one.
func Replace(path string, data []byte, perm os.FileMode) error {
	return ReplaceIn(vfs.OS{}, path, data, perm)
}

// ReplaceIn is Replace in fsys.
func ReplaceIn(fsys vfs.FS, path string, data []byte, perm os.FileMode) error {
	f, err := createTemp(fsys, filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer fsys.Remove(tmp) // a no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fsys.Rename(tmp, path)
}

// createTemp creates a new file in dir named prefix and a random number,
// mode 0600, as os.CreateTemp does.
func createTemp(fsys vfs.FS, dir, prefix string) (vfs.File, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		return f, err
	}
}

// SyncDir makes the directory's entries (new, renamed files) durable.
func SyncDir(dir string) error { return SyncDirIn(vfs.OS{}, dir) }

// SyncDirIn is SyncDir in fsys.
func SyncDirIn(fsys vfs.FS, dir string) error {
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
