package namesys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/ipfs/boxo/ipns"

	"rlog/internal/atomicfile"
	"rlog/internal/vfs"
)

// Dir keeps records as files in a directory, one per name: the embedded
// repo's name store. It is both Publisher and Resolver, and a
// ForkResolver: it never replaces a record it holds with an older one or
// with one that forks it (Compare), and keeps the other record of a fork
// beside its own, as proof, until a newer record supersedes both.
type Dir struct {
	fs       vfs.FS
	dir      string
	readOnly bool
}

// NewDir uses the records in dir; a read-only Dir never writes to it.
func NewDir(dir string, readOnly bool) *Dir { return NewDirIn(vfs.OS{}, dir, readOnly) }

// NewDirIn is NewDir in the file system fsys (the power-cut test's).
func NewDirIn(fsys vfs.FS, dir string, readOnly bool) *Dir {
	return &Dir{fs: fsys, dir: dir, readOnly: readOnly}
}

func (d *Dir) file(name ipns.Name) string { return filepath.Join(d.dir, name.String()+".ipns") }

func (d *Dir) forkFile(name ipns.Name) string {
	return filepath.Join(d.dir, name.String()+".fork.ipns")
}

// Publish stores raw as the record of name if it verifies against the name
// and Compare accepts it against the record held (a held file that does not
// verify counts as none). It refuses an older record with ErrRollback, and
// one that forks the held record with ErrFork, keeping it as the fork's
// proof for ResolveFork.
func (d *Dir) Publish(_ context.Context, name ipns.Name, raw []byte) error {
	if d.readOnly {
		return fmt.Errorf("namesys: publish %s in %s: %w", name, d.dir, ErrReadOnly)
	}
	got, err := verify(name, raw)
	if err != nil {
		return fmt.Errorf("namesys: publish %s: %w", name, err)
	}
	if err := d.fs.MkdirAll(d.dir, 0o755); err != nil {
		return fmt.Errorf("namesys: publish %s: %w", name, err)
	}
	var held *Record
	if b, err := vfs.ReadFile(d.fs, d.file(name)); err == nil {
		held, _ = verify(name, b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("namesys: publish %s: %w", name, err)
	}
	if err := Compare(held, got); err != nil {
		if errors.Is(err, ErrFork) {
			if werr := atomicfile.ReplaceIn(d.fs, d.forkFile(name), raw, 0o644); werr != nil {
				return fmt.Errorf("namesys: publish %s: keep the fork's proof: %w (%w)", name, werr, err)
			}
		}
		return fmt.Errorf("namesys: publish %s in %s: %w", name, d.dir, err)
	}
	// Durable when Publish returns, the directory synced too: a record
	// lost in a power cut would leave the name resolving to an older
	// record, whose head the writer may have deleted since, or to none
	// until the next publish.
	if err := atomicfile.WriteIn(d.fs, d.file(name), raw, 0o644); err != nil {
		return fmt.Errorf("namesys: publish %s: %w", name, err)
	}
	if held == nil || got.Sequence > held.Sequence {
		// A newer record supersedes a fork of the one it replaced.
		if err := d.fs.Remove(d.forkFile(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("namesys: publish %s: %w", name, err)
		}
	}
	return nil
}

func (d *Dir) Resolve(_ context.Context, name ipns.Name) ([]byte, error) {
	return d.read(name, d.file(name))
}

func (d *Dir) ResolveFork(_ context.Context, name ipns.Name) ([]byte, error) {
	return d.read(name, d.forkFile(name))
}

func (d *Dir) read(name ipns.Name, file string) ([]byte, error) {
	b, err := vfs.ReadFile(d.fs, file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("namesys: resolve %s in %s: %w", name, d.dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("namesys: resolve %s: %w", name, err)
	}
	return b, nil
}
