package cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/multiformats/go-multihash"
	goleveldb "github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"rlog/internal/vfs"
)

// Embedded is the default store of a repo: a LevelDB in one directory,
// blocks under the keys a boxo blockstore gives them, sealed pages in pack
// files beside it (pack.go). LevelDB was chosen by measurement (see
// docs/PERFORMANCE.md and docs/STORAGE.md): for many small blocks it writes
// several times faster than flatfs or pebble and uses a tenth of flatfs's
// disk; for a million messages' sealed pages, compressed with Snappy, it
// takes the least disk of LevelDB, Pebble and flatfs.
type Embedded struct {
	fs       vfs.FS // where its files are (see OpenEmbeddedIn)
	dir      string
	db       *goleveldb.DB // nil read-only (see view)
	readOnly bool
	view     *readView // read-only: no lock, see readView
	packs    *packs    // sealed pages, out of the tables (pack.go)

	// gc is held by Collect; Hold takes it shared.
	gc sync.RWMutex
	// young, while Collect runs, holds the blocks put since it began:
	// they are not collected.
	youngMu sync.Mutex
	young   map[string]struct{}

	// load is held by Load, and shared by every other write (Put,
	// Delete, Collect): Load's final sync needs its last write in the
	// newest memtable (see Load).
	load sync.RWMutex
}

// OpenEmbedded opens (creating when writable) the store in dir. A read-only
// store refuses Put and Delete and never writes to dir; it takes no lock,
// so any number of readers and one writer use dir at once, and it sees
// what the writer wrote (see readView).
func OpenEmbedded(dir string, readOnly bool) (*Embedded, error) {
	return OpenEmbeddedIn(vfs.OS{}, dir, readOnly)
}

// OpenEmbeddedIn is OpenEmbedded with the store's files, LevelDB's and
// the packs, in fsys (the power-cut test's file system); a read-only store
// reads them from the real one.
func OpenEmbeddedIn(fsys vfs.FS, dir string, readOnly bool) (*Embedded, error) {
	if readOnly {
		v, err := openReadView(dir)
		if err != nil {
			return nil, fmt.Errorf("cas: open store %s: %w", dir, err)
		}
		return &Embedded{dir: dir, readOnly: true, view: v, packs: &packs{fs: vfs.OS{}, dir: packsDir(dir), files: map[uint64]vfs.File{}}}, nil
	}
	opts := &opt.Options{
		// Snappy: a sealed page repeats its group id and field tags in
		// every entry, which takes the store from 1.21x the bodies to
		// 1.06x for incompressible bodies (docs/STORAGE.md). Tables
		// written before stay readable as they are.
		Compression: opt.SnappyCompression,
		// Pages are large values under random keys: every merge of level
		// 0 into level 1 rewrites most of level 1. Merging 16 tables at a
		// time, not 4, halves what a publish writes (write amplification
		// 4.4, not 9.3, docs/STORAGE.md).
		CompactionL0Trigger: 16,
		// Put asks for each block whether it is held: a Bloom filter
		// answers for one that is not without reading a table (a
		// publish spent a quarter of its CPU there without it).
		Filter:                 filter.NewBloomFilter(10),
		WriteL0SlowdownTrigger: 24,
		WriteL0PauseTrigger:    36,
		// Blocks are read about once each (a page by a reader, a
		// payload by a fetch): a 2 MiB cache, not LevelDB's 8 MiB, keeps
		// the memory of a command on a million messages bounded.
		BlockCacheCapacity: 2 << 20,
	}
	// Writes are synced (Put once per batch; a publish puts batches of 4
	// MiB): sealed pages are the only copy of the messages they hold once
	// the writer's journal is compacted.
	d, err := openLevelDB(fsys, dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cas: open store %s: %w", dir, err)
	}
	e := &Embedded{fs: fsys, dir: dir, db: d}
	if err := e.openPacks(); err != nil {
		d.Close()
		return nil, fmt.Errorf("cas: open store %s: packs: %w", dir, err)
	}
	return e, nil
}

func (e *Embedded) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if c.Defined() {
		b, ok, err := e.packGet(ctx, c.Hash())
		if err != nil {
			return nil, fmt.Errorf("cas: store %s: get %s: %w", e.dir, c, err)
		}
		if ok {
			return b, nil
		}
	}
	if e.view != nil {
		b, err := e.viewGet(ctx, c)
		if errors.Is(err, ErrNotFound) && c.Defined() {
			// The miss opened a newer view if the store changed: a page
			// packed since is in its index now.
			var ok bool
			if b, ok, err = e.packGet(ctx, c.Hash()); err == nil && !ok {
				err = ErrNotFound
			}
		}
		if err != nil {
			return nil, fmt.Errorf("cas: store %s: get %s: %w", e.dir, c, err)
		}
		return b, nil
	}
	if !c.Defined() {
		return nil, fmt.Errorf("cas: store %s: get %s: %w", e.dir, c, ErrNotFound)
	}
	b, err := e.db.Get(blockKey(c.Hash()), nil)
	if errors.Is(err, goleveldb.ErrNotFound) {
		return nil, fmt.Errorf("cas: store %s: get %s: %w", e.dir, c, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cas: store %s: get %s: %w", e.dir, c, err)
	}
	return b, nil
}

func (e *Embedded) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if c.Defined() {
		ok, err := e.packHas(ctx, c.Hash())
		if err != nil {
			return false, fmt.Errorf("cas: store %s: has %s: %w", e.dir, c, err)
		}
		if ok {
			return true, nil
		}
	}
	if e.view != nil {
		_, err := e.viewGet(ctx, c)
		if errors.Is(err, ErrNotFound) && c.Defined() {
			return e.packHas(ctx, c.Hash()) // in the newer view the miss opened
		}
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("cas: store %s: has %s: %w", e.dir, c, err)
		}
		return true, nil
	}
	if !c.Defined() {
		return false, nil
	}
	ok, err := e.db.Has(blockKey(c.Hash()), nil)
	if err != nil {
		return false, fmt.Errorf("cas: store %s: has %s: %w", e.dir, c, err)
	}
	return ok, nil
}

func (e *Embedded) Put(ctx context.Context, blks []blocks.Block) error {
	if e.readOnly {
		return fmt.Errorf("cas: store %s: put: %w", e.dir, ErrReadOnly)
	}
	e.load.RLock()
	defer e.load.RUnlock()
	e.markYoung(blks)
	// One batch, under the keys the blockstore reads, blocks held not
	// written again, and synced: durable when Put returns. (A synced write
	// later is not enough: LevelDB closes a full log without syncing it
	// when it starts the next, so only the newest log would be synced.)
	batch := new(goleveldb.Batch)
	for _, b := range blks {
		if ok, err := e.packWritten(b.Cid().Hash()); err != nil {
			return fmt.Errorf("cas: store %s: put: %w", e.dir, err)
		} else if ok {
			continue
		}
		k := blockKey(b.Cid().Hash())
		if ok, err := e.db.Has(k, nil); err != nil {
			return fmt.Errorf("cas: store %s: put: %w", e.dir, err)
		} else if !ok {
			batch.Put(k, b.RawData())
		}
	}
	if batch.Len() > 0 {
		if err := e.db.Write(batch, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("cas: store %s: put %d blocks: %w", e.dir, len(blks), err)
		}
	}
	if p := e.packs; p != nil { // stored: no longer lost to a failed pack write
		p.mu.Lock()
		for _, b := range blks {
			p.found(b.Cid().Hash())
		}
		p.mu.Unlock()
	}
	return nil
}

// Load stores the blocks cids, read with get, that the store lacks, for a
// restore of many new blocks. It writes them in the order of their keys,
// PutBatch bytes at a time, and syncs once at the end, not per batch:
//
//   - In key order, each memtable LevelDB flushes covers a key range no
//     other table holds, so it is placed below level 0 and moved down
//     whole, never merged and rewritten (a restore into an empty store
//     compacts nothing; one in random order rewrote its bytes about four
//     times over).
//   - Unsynced batches can be lost in a power cut, in any order, each
//     whole or not at all (a journal record is checksummed). That loses
//     nothing: a restore keeps its record only after Load returns, and
//     nothing else refers to the blocks before; a block held is its
//     hash's bytes, and one lost is stored again by the next restore.
//   - The final sync must cover every batch, not only those in the newest
//     journal (LevelDB closes a full journal without syncing it): Load
//     compacts the range of its last key, which flushes the memtables,
//     the newest included, to synced tables and a synced manifest. Put
//     is held off meanwhile, so the last key is in the newest memtable.
func (e *Embedded) Load(ctx context.Context, cids []cid.Cid, get func(context.Context, cid.Cid) ([]byte, error)) (int, error) {
	if e.readOnly {
		return 0, fmt.Errorf("cas: store %s: load: %w", e.dir, ErrReadOnly)
	}
	type entry struct {
		key []byte
		c   cid.Cid
	}
	all := make([]entry, len(cids))
	for i, c := range cids {
		all[i] = entry{dshelp.MultihashToDsKey(c.Hash()).Bytes(), c}
	}
	slices.SortFunc(all, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	e.load.Lock()
	defer e.load.Unlock()
	fail := func(n int, err error) (int, error) {
		return n, fmt.Errorf("cas: store %s: load: %w", e.dir, err)
	}
	batch := new(goleveldb.Batch)
	size, n := 0, 0
	var last []byte
	write := func() error {
		if batch.Len() == 0 {
			return nil
		}
		err := e.db.Write(batch, &opt.WriteOptions{NoWriteMerge: true})
		batch.Reset()
		size = 0
		return err
	}
	for i, en := range all {
		if err := ctx.Err(); err != nil {
			return fail(n, err)
		}
		if i > 0 && bytes.Equal(en.key, all[i-1].key) {
			n++
			continue
		}
		if ok, err := e.holds(en.c.Hash()); err != nil {
			return fail(n, err)
		} else if ok {
			n++
			continue
		}
		b, err := get(ctx, en.c)
		if err != nil {
			return fail(n, err)
		}
		e.youngMu.Lock()
		if e.young != nil {
			e.young[string(en.c.Hash())] = struct{}{}
		}
		e.youngMu.Unlock()
		batch.Put(en.key, b)
		last = en.key
		n++
		if size += len(b); size >= PutBatch {
			if err := write(); err != nil {
				return fail(n, err)
			}
		}
	}
	if err := write(); err != nil {
		return fail(n, err)
	}
	if last == nil {
		return n, nil // nothing written
	}
	if err := e.db.CompactRange(util.Range{Start: last, Limit: last}); err != nil {
		return fail(n, fmt.Errorf("sync: %w", err))
	}
	return n, nil
}

func (e *Embedded) Delete(ctx context.Context, c cid.Cid) error {
	if e.readOnly {
		return fmt.Errorf("cas: store %s: delete: %w", e.dir, ErrReadOnly)
	}
	// A block being written to a pack is written first. (The writing
	// takes e.load: it is waited for before e.load is taken, here and in
	// Sync and Collect, or a Load waiting for e.load would wait forever.)
	e.packs.putMu.Lock()
	defer e.packs.putMu.Unlock()
	if err := e.packs.wait(); err != nil {
		return fmt.Errorf("cas: store %s: delete %s: %w", e.dir, c, err)
	}
	e.load.RLock()
	defer e.load.RUnlock()
	e.packs.mu.Lock()
	delete(e.packs.pending, string(c.Hash()))
	e.packs.batch.Delete(packKey(c.Hash()))
	e.packs.found(c.Hash()) // not wanted any more
	e.packs.mu.Unlock()
	// Deleted from the index at once; its record stays in its pack until a
	// collection rewrites the pack.
	if err := e.db.Delete(packKey(c.Hash()), nil); err != nil {
		return fmt.Errorf("cas: store %s: delete %s: %w", e.dir, c, err)
	}
	if err := e.db.Delete(blockKey(c.Hash()), &opt.WriteOptions{Sync: true}); err != nil {
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

// Hold keeps Collect from running until the returned function is called:
// a writer holds it from the first block of something it stores to the
// record or state that makes the blocks referenced.
func (e *Embedded) Hold() (release func()) {
	e.gc.RLock()
	return e.gc.RUnlock
}

// Walk calls f for every block of the store: its multihash and size.
func (e *Embedded) Walk(ctx context.Context, f func(mh multihash.Multihash, size int) error) error {
	return e.walk(ctx, func(mh multihash.Multihash, size int, _ bool) error { return f(mh, size) })
}

// walk is Walk, saying of each block whether a pack holds it. Blocks put
// with PutPacked and not synced yet are not walked.
func (e *Embedded) walk(ctx context.Context, f func(mh multihash.Multihash, size int, packed bool) error) error {
	if e.readOnly {
		return fmt.Errorf("cas: store %s: walk: %w", e.dir, ErrReadOnly)
	}
	it := e.db.NewIterator(nil, &opt.ReadOptions{DontFillCache: true})
	defer it.Release()
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Key()
		if rest, ok := bytes.CutPrefix(k, []byte(packKeyPrefix)); ok {
			loc, err := decodePackLoc(it.Value())
			if err != nil {
				continue
			}
			if err := f(multihash.Multihash(bytes.Clone(rest)), int(loc.size), true); err != nil {
				return err
			}
			continue
		}
		if len(k) == 0 || k[0] != '/' {
			continue // the pack index's other keys
		}
		mh, err := dshelp.DsKeyToMultihash(datastore.RawKey(string(k)))
		if err != nil {
			continue // not a block (the sync marker)
		}
		if err := f(mh, len(it.Value()), false); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("cas: store %s: walk: %w", e.dir, err)
	}
	return nil
}

// Collected reports a Collect.
type Collected struct {
	Blocks int64 // removed
	Bytes  int64
	Kept   int64 // blocks kept
}

// Collect removes every block that live does not keep. It excludes Hold
// for its whole run: live is computed (mark) with nothing half-stored, and
// blocks put while it runs are kept whatever live says. Then it compacts
// the store, so that the space is given back to the file system.
func (e *Embedded) Collect(ctx context.Context, mark func(ctx context.Context) (live func(mh multihash.Multihash) bool, err error)) (Collected, error) {
	var res Collected
	if e.readOnly {
		return res, fmt.Errorf("cas: store %s: collect: %w", e.dir, ErrReadOnly)
	}
	e.gc.Lock()
	defer e.gc.Unlock()
	// Packed blocks put before the collection began are walked too: they
	// are written and committed first (see Delete for the order).
	e.packs.putMu.Lock()
	defer e.packs.putMu.Unlock()
	if err := e.packs.wait(); err != nil {
		return res, fmt.Errorf("cas: store %s: collect: %w", e.dir, err)
	}
	e.load.RLock() // it writes: see load
	defer e.load.RUnlock()
	e.packs.mu.Lock()
	err := e.commitLocked()
	e.packs.mu.Unlock()
	if err != nil {
		return res, fmt.Errorf("cas: store %s: collect: %w", e.dir, err)
	}
	e.youngMu.Lock()
	e.young = map[string]struct{}{}
	e.youngMu.Unlock()
	defer func() {
		e.youngMu.Lock()
		e.young = nil
		e.youngMu.Unlock()
	}()
	live, err := mark(ctx)
	if err != nil {
		return res, err
	}
	batch := new(goleveldb.Batch)
	flush := func() error {
		if batch.Len() == 0 {
			return nil
		}
		err := e.db.Write(batch, nil)
		batch.Reset()
		return err
	}
	err = e.walk(ctx, func(mh multihash.Multihash, size int, packed bool) error {
		e.youngMu.Lock()
		_, young := e.young[string(mh)]
		e.youngMu.Unlock()
		if young || live(mh) {
			res.Kept++
			return nil
		}
		if packed {
			batch.Delete(packKey(mh))
		} else {
			batch.Delete(blockKey(mh))
		}
		res.Blocks++
		res.Bytes += int64(size)
		if batch.Len() >= 1024 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return res, fmt.Errorf("cas: store %s: collect: %w", e.dir, err)
	}
	if res.Blocks > 0 {
		if err := e.db.CompactRange(util.Range{}); err != nil {
			return res, fmt.Errorf("cas: store %s: compact: %w", e.dir, err)
		}
	}
	// The records of removed blocks are still in their packs: a pack
	// mostly removed is rewritten.
	if _, err := e.rewritePacks(ctx); err != nil {
		return res, fmt.Errorf("cas: store %s: collect: %w", e.dir, err)
	}
	return res, nil
}

// Close releases the store.
func (e *Embedded) Close() error {
	if e.view != nil {
		if err := errors.Join(e.view.close(), e.packs.close()); err != nil {
			return fmt.Errorf("cas: store %s: close: %w", e.dir, err)
		}
		return nil
	}
	err := e.Sync(context.Background())
	err = errors.Join(err, e.packs.close())
	err = errors.Join(err, e.db.Close())
	if err != nil {
		return fmt.Errorf("cas: store %s: close: %w", e.dir, err)
	}
	return nil
}

// Blockstore is the boxo blockstore under the store, for serving it; nil
// for a read-only store.
func (e *Embedded) Blockstore() blockstore.Blockstore {
	if e.db == nil {
		return nil
	}
	return embeddedBlockstore{e}
}

// markYoung, while Collect runs, keeps blks from being collected.
func (e *Embedded) markYoung(blks []blocks.Block) {
	e.youngMu.Lock()
	defer e.youngMu.Unlock()
	if e.young != nil {
		for _, b := range blks {
			e.young[string(b.Cid().Hash())] = struct{}{}
		}
	}
}
