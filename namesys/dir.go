package namesys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/boxo/ipns"

	"rlog/internal/atomicfile"
)

// Dir keeps records as files in a directory, one per name: the embedded
// repo's name store. It is both Publisher and Resolver.
type Dir struct {
	dir      string
	readOnly bool
}

// NewDir uses the records in dir; a read-only Dir never writes to it.
func NewDir(dir string, readOnly bool) *Dir { return &Dir{dir: dir, readOnly: readOnly} }

func (d *Dir) file(name ipns.Name) string { return filepath.Join(d.dir, name.String()+".ipns") }

func (d *Dir) Publish(_ context.Context, name ipns.Name, raw []byte) error {
	if d.readOnly {
		return fmt.Errorf("namesys: publish %s in %s: %w", name, d.dir, ErrReadOnly)
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return fmt.Errorf("namesys: publish %s: %w", name, err)
	}
	// Atomic, but the rename need not be durable: a writer saves its state
	// (with the record's sequence) first, so a record lost in a crash is
	// made again by its next publish, and the older one is still valid.
	if err := atomicfile.Replace(d.file(name), raw, 0o644); err != nil {
		return fmt.Errorf("namesys: publish %s: %w", name, err)
	}
	return nil
}

func (d *Dir) Resolve(_ context.Context, name ipns.Name) ([]byte, error) {
	b, err := os.ReadFile(d.file(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("namesys: resolve %s in %s: %w", name, d.dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("namesys: resolve %s: %w", name, err)
	}
	return b, nil
}
