package cas

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	leveldb "github.com/ipfs/go-ds-leveldb"
	ipld "github.com/ipfs/go-ipld-format"
	goleveldb "github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Embedded is the default store of a repo: a boxo blockstore on a LevelDB
// datastore in one directory. LevelDB was chosen by measurement (see
// docs/PERFORMANCE.md): for many small blocks it writes several times faster
// than flatfs or pebble and uses a tenth of flatfs's disk.
type Embedded struct {
	dir      string
	ds       *leveldb.Datastore
	bs       blockstore.Blockstore
	readOnly bool
	view     *readView // read-only: no lock, see readView
}

// OpenEmbedded opens (creating when writable) the store in dir. A read-only
// store refuses Put and Delete and never writes to dir; it takes no lock,
// so any number of readers and one writer use dir at once, and it sees
// what the writer wrote (see readView).
func OpenEmbedded(dir string, readOnly bool) (*Embedded, error) {
	if readOnly {
		v, err := openReadView(dir)
		if err != nil {
			return nil, fmt.Errorf("cas: open store %s: %w", dir, err)
		}
		return &Embedded{dir: dir, readOnly: true, view: v}, nil
	}
	d, err := leveldb.NewDatastore(dir, &leveldb.Options{
		NoSync:         true, // durability comes from the writer's own journal
		ReadOnly:       readOnly,
		ErrorIfMissing: readOnly,
		Compression:    opt.NoCompression,
		// Blocks are read about once each (a page by a reader, a
		// payload by a fetch): a 2 MiB cache, not LevelDB's 8 MiB, keeps
		// the memory of a command on a million messages bounded.
		BlockCacheCapacity: 2 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("cas: open store %s: %w", dir, err)
	}
	return &Embedded{dir: dir, ds: d, bs: blockstore.NewBlockstore(d, blockstore.NoPrefix()), readOnly: readOnly}, nil
}

func (e *Embedded) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if e.view != nil {
		b, err := e.viewGet(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("cas: store %s: get %s: %w", e.dir, c, err)
		}
		return b, nil
	}
	b, err := e.bs.Get(ctx, c)
	if err != nil {
		if ipld.IsNotFound(err) {
			return nil, fmt.Errorf("cas: store %s: get %s: %w", e.dir, c, ErrNotFound)
		}
		return nil, fmt.Errorf("cas: store %s: get %s: %w", e.dir, c, err)
	}
	return b.RawData(), nil
}

func (e *Embedded) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if e.view != nil {
		_, err := e.viewGet(ctx, c)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("cas: store %s: has %s: %w", e.dir, c, err)
		}
		return true, nil
	}
	ok, err := e.bs.Has(ctx, c)
	if err != nil {
		return false, fmt.Errorf("cas: store %s: has %s: %w", e.dir, c, err)
	}
	return ok, nil
}

func (e *Embedded) Put(ctx context.Context, blks []blocks.Block) error {
	if e.readOnly {
		return fmt.Errorf("cas: store %s: put: %w", e.dir, ErrReadOnly)
	}
	if err := e.bs.PutMany(ctx, blks); err != nil {
		return fmt.Errorf("cas: store %s: put %d blocks: %w", e.dir, len(blks), err)
	}
	return nil
}

// Sync makes every Put so far durable.
func (e *Embedded) Sync(ctx context.Context) error {
	if e.readOnly {
		return nil
	}
	// A synced write to LevelDB flushes its journal, and with it every
	// earlier write.
	if err := e.ds.DB.Put([]byte("/rlog/sync"), nil, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("cas: store %s: sync: %w", e.dir, err)
	}
	return nil
}

func (e *Embedded) Delete(ctx context.Context, c cid.Cid) error {
	if e.readOnly {
		return fmt.Errorf("cas: store %s: delete: %w", e.dir, ErrReadOnly)
	}
	if err := e.bs.DeleteBlock(ctx, c); err != nil && !ipld.IsNotFound(err) {
		return fmt.Errorf("cas: store %s: delete %s: %w", e.dir, c, err)
	}
	return nil
}

// viewGet reads c from a read-only store, under the key the blockstore
// writes it at.
func (e *Embedded) viewGet(ctx context.Context, c cid.Cid) ([]byte, error) {
	if !c.Defined() {
		return nil, ErrNotFound
	}
	b, err := e.view.get(ctx, dshelp.MultihashToDsKey(c.Hash()).Bytes())
	if errors.Is(err, goleveldb.ErrNotFound) {
		return nil, ErrNotFound
	}
	return b, err
}

// Close releases the store.
func (e *Embedded) Close() error {
	if e.view != nil {
		if err := e.view.close(); err != nil {
			return fmt.Errorf("cas: store %s: close: %w", e.dir, err)
		}
		return nil
	}
	if err := e.ds.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("cas: store %s: close: %w", e.dir, err)
	}
	return nil
}

// Blockstore is the boxo blockstore under the store, for serving it; nil
// for a read-only store.
func (e *Embedded) Blockstore() blockstore.Blockstore { return e.bs }
