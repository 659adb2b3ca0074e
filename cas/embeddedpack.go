package cas

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
	goleveldb "github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"rlog/internal/vfs"
)

// packMax is the size at which a pack is full and the next one begins: a
// collection rewrites a pack whole, so packs are kept to a size it can
// rewrite quickly.
var packMax int64 = 64 << 20

// packs is the pack side of an Embedded store (see pack.go).
type packs struct {
	fs  vfs.FS // the pack files' file system
	dir string

	// putMu is held by PutPacked and Sync: one call's blocks are written
	// at a time, in order.
	putMu sync.Mutex
	done  chan struct{} // closed when the blocks of the last PutPacked are written
	err   error         // why they could not be

	// mu is held while a pack is written or the index of packs changes.
	mu     sync.Mutex
	flying map[string][]byte // put, not written yet: their bytes
	// lost are blocks put whose write failed, with the first failure:
	// Sync fails while any is not put again (another caller of PutPacked
	// may have been told of the failure, not the one whose blocks they
	// were).
	lost      map[string]struct{}
	lostErr   error
	cur       vfs.File // the pack being written; nil before the first write
	curNum    uint64
	curLen    int64              // its bytes, committed or not
	pending   map[string]packLoc // written to cur, not in the index yet
	batch     *goleveldb.Batch   // the index entries of pending
	next      uint64             // the number of the next pack to create
	committed map[uint64]int64   // committed length of each pack

	// files are the packs open for reading, by number. A read holds
	// readMu for reading from looking its file up to the end of its read;
	// a file is closed (replaced, or its pack removed) only with readMu
	// held for writing, so never under a read.
	readMu  sync.RWMutex
	filesMu sync.Mutex
	files   map[uint64]vfs.File
}

func packsDir(dir string) string { return filepath.Join(dir, "packs") }

// openPacks reads the pack index of a writable store: a pack the index
// does not commit (a crash before its first commit, or a pack a collection
// rewrote) is removed, and bytes past a pack's committed length (a write
// cut short) are cut off.
func (e *Embedded) openPacks() error {
	p := &packs{fs: e.fs, dir: packsDir(e.dir), pending: map[string]packLoc{}, flying: map[string][]byte{}, lost: map[string]struct{}{}, batch: new(goleveldb.Batch),
		committed: map[uint64]int64{}, files: map[uint64]vfs.File{}}
	if _, err := p.fs.Stat(p.dir); errors.Is(err, fs.ErrNotExist) {
		// Made durable before the index names a pack in it: LevelDB
		// syncs the store's directory when it writes its manifest, not
		// after this.
		if err := p.fs.MkdirAll(p.dir, 0o755); err != nil {
			return err
		}
		if err := p.fs.SyncDir(e.dir); err != nil {
			return err
		}
	}
	it := e.db.NewIterator(util.BytesPrefix([]byte(packLenKeyPrefix)), nil)
	for it.Next() {
		k := it.Key()[len(packLenKeyPrefix):]
		n, _ := binary.Uvarint(it.Value())
		if len(k) == 8 {
			p.committed[binary.BigEndian.Uint64(k)] = int64(n)
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return err
	}
	if v, err := e.db.Get([]byte(packNextKey), nil); err == nil {
		p.next, _ = binary.Uvarint(v)
	} else if !errors.Is(err, goleveldb.ErrNotFound) {
		return err
	}
	ents, err := p.fs.ReadDir(p.dir)
	if err != nil {
		return err
	}
	for _, en := range ents {
		num, ok := parsePackName(en.Name())
		if !ok {
			continue
		}
		p.next = max(p.next, num+1)
		path := filepath.Join(p.dir, en.Name())
		l, ok := p.committed[num]
		if !ok {
			if err := p.fs.Remove(path); err != nil {
				return err
			}
			continue
		}
		if info, err := en.Info(); err == nil && info.Size() > l {
			if err := truncate(p.fs, path, l); err != nil {
				return err
			}
		}
	}
	for num := range p.committed {
		p.next = max(p.next, num+1)
	}
	e.packs = p
	return nil
}

func parsePackName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ".pack")
	if !ok || len(s) != 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// PutPacked stores blocks meant to be kept for good (a log's sealed pages)
// in the store's pack files, each compressed once, instead of its LevelDB
// tables. Blocks the store holds are not stored again. It returns before
// they are written: the records are made on every core and written in
// order while the caller goes on (one call's blocks at a time), and the
// next PutPacked or Sync waits for them and reports a failure. They are
// durable once Sync returns; Get and Has see them at once. The store
// reads blks' bytes until they are written: the caller may reuse them
// once the next PutPacked or Sync returned.
func (e *Embedded) PutPacked(ctx context.Context, blks []blocks.Block) error {
	if e.readOnly {
		return fmt.Errorf("cas: store %s: put: %w", e.dir, ErrReadOnly)
	}
	e.markYoung(blks)
	p := e.packs
	p.putMu.Lock()
	defer p.putMu.Unlock()
	if err := p.wait(); err != nil {
		return fmt.Errorf("cas: store %s: put: %w", e.dir, err)
	}
	p.mu.Lock()
	var fresh []blocks.Block
	for _, b := range blks {
		held, err := e.holdsLocked(b.Cid().Hash())
		if err != nil {
			p.mu.Unlock()
			return fmt.Errorf("cas: store %s: put: %w", e.dir, err)
		}
		if !held {
			fresh = append(fresh, b)
		}
	}
	for _, b := range fresh {
		p.flying[string(b.Cid().Hash())] = b.RawData()
	}
	p.mu.Unlock()
	if len(fresh) == 0 {
		return nil
	}
	done := make(chan struct{})
	p.done = done
	go func() {
		defer close(done)
		e.load.RLock() // it may commit a full pack: a write, see load
		defer e.load.RUnlock()
		p.err = e.writeRecords(fresh)
	}()
	return nil
}

// wait waits for the blocks of the last PutPacked to be written, and
// returns what failed; p.putMu is held.
func (p *packs) wait() error {
	if p.done == nil {
		return nil
	}
	<-p.done
	err := p.err
	p.done, p.err = nil, nil
	return err
}

// recPool holds the buffers records are made in.
var recPool sync.Pool

// writeRecords makes the records of blks on every core and appends them
// to the packs in order.
func (e *Embedded) writeRecords(blks []blocks.Block) error {
	p := e.packs
	recs := make([]*[]byte, len(blks))
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var scratch []byte
			for i := range work {
				buf, _ := recPool.Get().(*[]byte)
				if buf == nil {
					buf = new([]byte)
				}
				*buf, scratch = appendPackRecord((*buf)[:0], scratch, blks[i].Cid().Hash(), blks[i].RawData())
				recs[i] = buf
			}
		})
	}
	for i := range blks {
		work <- i
	}
	close(work)
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	for i, b := range blks {
		mh := b.Cid().Hash()
		if err == nil {
			err = e.appendRecord(mh, *recs[i], uint64(len(b.RawData())))
		}
		if err != nil {
			p.lost[string(mh)] = struct{}{}
			p.lostErr = cmp.Or(p.lostErr, err)
		} else {
			p.found(mh)
		}
		delete(p.flying, string(mh))
		recPool.Put(recs[i])
	}
	return err
}

// holdsLocked reports whether the store holds the block mh, in a pack
// (committed or not) or in its tables; p.mu is held.
func (e *Embedded) holdsLocked(mh multihash.Multihash) (bool, error) {
	if _, ok := e.packs.flying[string(mh)]; ok {
		return true, nil
	}
	return e.writtenLocked(mh)
}

// writtenLocked is holdsLocked without the blocks still to be written to
// a pack: a write that then fails would leave a block Put skipped stored
// nowhere. p.mu is held.
func (e *Embedded) writtenLocked(mh multihash.Multihash) (bool, error) {
	if _, ok := e.packs.pending[string(mh)]; ok {
		return true, nil
	}
	return e.holds(mh)
}

// packWritten reports whether a pack holds mh written (Put's test).
func (e *Embedded) packWritten(mh multihash.Multihash) (bool, error) {
	if e.packs == nil {
		return false, nil
	}
	e.packs.mu.Lock()
	defer e.packs.mu.Unlock()
	return e.writtenLocked(mh)
}

// holds reports whether the index or the tables hold mh.
func (e *Embedded) holds(mh multihash.Multihash) (bool, error) {
	if ok, err := e.db.Has(packKey(mh), nil); err != nil || ok {
		return ok, err
	}
	return e.db.Has(blockKey(mh), nil)
}

// appendRecord writes the record rec of block mh (size bytes) to the
// current pack, beginning a pack when there is none or it is full; p.mu
// is held.
func (e *Embedded) appendRecord(mh multihash.Multihash, rec []byte, size uint64) error {
	p := e.packs
	if p.cur != nil && p.curLen+int64(len(rec)) > packMax && p.curLen > int64(len(packMagic)) {
		// Full: committed, then a new pack (the newest, reopened, would
		// be this one again).
		if err := e.commitLocked(); err != nil {
			return err
		}
		if err := p.begin(true); err != nil {
			return err
		}
	}
	if p.cur == nil {
		if err := p.begin(false); err != nil {
			return err
		}
	}
	if _, err := p.cur.WriteAt(rec, p.curLen); err != nil {
		return fmt.Errorf("write pack %d: %w", p.curNum, err)
	}
	loc := packLoc{pack: p.curNum, off: uint64(p.curLen), n: uint64(len(rec)), size: size}
	p.curLen += int64(len(rec))
	p.pending[string(mh)] = loc
	p.batch.Put(packKey(mh), loc.encode())
	return nil
}

// begin makes the current pack: the newest committed one if it has room
// and fresh is false, else a new one, created durably (the file and its
// directory entry).
func (p *packs) begin(fresh bool) error {
	var newest uint64
	var have bool
	for n := range p.committed {
		if !have || n > newest {
			newest, have = n, true
		}
	}
	if have && !fresh && p.committed[newest] < packMax {
		f, err := p.fs.OpenFile(filepath.Join(p.dir, packName(newest)), os.O_RDWR, 0)
		if err == nil {
			p.cur, p.curNum, p.curLen = f, newest, p.committed[newest]
			p.keep(newest, f)
			return nil
		}
	}
	num := p.next
	p.next++
	path := filepath.Join(p.dir, packName(num))
	f, err := p.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create pack: %w", err)
	}
	if _, err := f.WriteAt([]byte(packMagic), 0); err != nil {
		f.Close()
		return fmt.Errorf("create pack: %w", err)
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		f.Close()
		return fmt.Errorf("create pack: %w", err)
	}
	p.cur, p.curNum, p.curLen = f, num, int64(len(packMagic))
	p.keep(num, f)
	return nil
}

// keep makes f the file pack num is read from.
func (p *packs) keep(num uint64, f vfs.File) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	p.filesMu.Lock()
	defer p.filesMu.Unlock()
	if old, ok := p.files[num]; ok && old != f {
		old.Close()
	}
	p.files[num] = f
}

// truncate cuts the file path to size bytes.
func truncate(fsys vfs.FS, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Truncate(size), f.Close())
}

// commitLocked makes what was written to the current pack durable, then
// its index entries: the pack is synced before the index names a record
// of it. p.mu is held.
func (e *Embedded) commitLocked() error {
	p := e.packs
	if p.cur == nil || p.committed[p.curNum] == p.curLen {
		return nil
	}
	if err := p.cur.Sync(); err != nil {
		return fmt.Errorf("sync pack %d: %w", p.curNum, err)
	}
	p.batch.Put(packLenKey(p.curNum), binary.AppendUvarint(nil, uint64(p.curLen)))
	p.batch.Put([]byte(packNextKey), binary.AppendUvarint(nil, p.next))
	if err := e.db.Write(p.batch, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("commit pack %d: %w", p.curNum, err)
	}
	p.committed[p.curNum] = p.curLen
	p.batch.Reset()
	clear(p.pending)
	return nil
}

// Sync makes every block put so far durable: Put's are when it returns;
// PutPacked's pack records and index entries are synced here.
func (e *Embedded) Sync(ctx context.Context) error {
	if e.readOnly || e.packs == nil {
		return nil
	}
	e.packs.putMu.Lock()
	defer e.packs.putMu.Unlock()
	err := e.packs.wait() // before e.load: see Delete
	e.load.RLock()
	defer e.load.RUnlock()
	e.packs.mu.Lock()
	defer e.packs.mu.Unlock()
	if err == nil {
		err = e.commitLocked()
	}
	if err == nil && len(e.packs.lost) > 0 {
		err = fmt.Errorf("%d blocks put were not written (put them again): %w", len(e.packs.lost), e.packs.lostErr)
	}
	if err != nil {
		return fmt.Errorf("cas: store %s: %w", e.dir, err)
	}
	return nil
}

// found takes mh off the blocks lost, once it is stored; p.mu is held.
func (p *packs) found(mh multihash.Multihash) {
	delete(p.lost, string(mh))
	if len(p.lost) == 0 {
		p.lostErr = nil
	}
}

// packGet reads block mh from the packs: ok false when no pack holds it.
func (e *Embedded) packGet(ctx context.Context, mh multihash.Multihash) ([]byte, bool, error) {
	if e.view != nil {
		return e.viewPackGet(ctx, mh)
	}
	e.packs.mu.Lock()
	b, ok := e.packs.flying[string(mh)]
	if ok {
		b = bytes.Clone(b) // the caller's bytes: a putter may reuse its own once written
	}
	e.packs.mu.Unlock()
	if ok {
		return b, true, nil
	}
	for try := 1; ; try++ {
		loc, ok, err := e.packLoc(ctx, mh)
		if !ok || err != nil {
			return nil, false, err
		}
		b, err = e.packs.read(mh, loc)
		// A collection removed the pack since the index was read: the
		// index names the block's new place (or none) now.
		if !errors.Is(err, fs.ErrNotExist) || try == 3 {
			return b, true, err
		}
	}
}

// viewPackGet is packGet in a read-only store. A pack the view names may
// have been removed by a collection that rewrote it since the view was
// opened: the view is then opened again, as for a miss (see readView).
func (e *Embedded) viewPackGet(ctx context.Context, mh multihash.Multihash) ([]byte, bool, error) {
	for try := 1; ; try++ {
		fp := e.view.fingerprint()
		// The view as it is: a miss here opens no newer view (most
		// blocks that are not pages are in the tables, read next; Get
		// looks here again once a miss there opened a newer view).
		v, err := e.view.peek(packKey(mh))
		if errors.Is(err, goleveldb.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		loc, err := decodePackLoc(v)
		if err != nil {
			return nil, false, err
		}
		b, err := e.packs.read(mh, loc)
		if !errors.Is(err, fs.ErrNotExist) || try == readViewTries {
			return b, true, err
		}
		if _, rerr := e.view.refresh(ctx, fp); rerr != nil {
			return nil, false, errors.Join(err, rerr)
		}
	}
}

// read reads the record at loc and returns block mh from it.
func (p *packs) read(mh multihash.Multihash, loc packLoc) ([]byte, error) {
	p.readMu.RLock()
	f, err := p.file(loc.pack)
	if err != nil {
		p.readMu.RUnlock()
		return nil, err
	}
	b := make([]byte, loc.n)
	_, err = f.ReadAt(b, int64(loc.off))
	p.readMu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("read pack %d at %d: %w", loc.pack, loc.off, err)
	}
	r, err := decodePackRecord(b)
	if err == nil && !bytes.Equal(r.mh, mh) {
		err = fmt.Errorf("%w: it holds another block", errPackRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("pack %d at %d: %w", loc.pack, loc.off, err)
	}
	blk, err := r.block()
	if err == nil && uint64(len(blk)) != loc.size {
		err = fmt.Errorf("%w: %d bytes, the index says %d", errPackRecord, len(blk), loc.size)
	}
	if err != nil {
		return nil, fmt.Errorf("pack %d at %d: %w", loc.pack, loc.off, err)
	}
	return blk, nil
}

// file is pack num, open for reading.
func (p *packs) file(num uint64) (vfs.File, error) {
	p.filesMu.Lock()
	defer p.filesMu.Unlock()
	if f, ok := p.files[num]; ok {
		return f, nil
	}
	f, err := p.fs.OpenFile(filepath.Join(p.dir, packName(num)), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open pack %d: %w", num, err)
	}
	p.files[num] = f
	return f, nil
}

// forget closes and drops pack num's file, once no read uses it.
func (p *packs) forget(num uint64) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	p.filesMu.Lock()
	defer p.filesMu.Unlock()
	if f, ok := p.files[num]; ok {
		f.Close()
		delete(p.files, num)
	}
}

func (p *packs) close() error {
	p.filesMu.Lock()
	defer p.filesMu.Unlock()
	var errs []error
	for n, f := range p.files {
		errs = append(errs, f.Close())
		delete(p.files, n)
	}
	return errors.Join(errs...)
}

// packHas reports whether the packs hold mh (a read-only store: its view).
func (e *Embedded) packHas(ctx context.Context, mh multihash.Multihash) (bool, error) {
	if e.view != nil {
		_, err := e.view.peek(packKey(mh)) // as in viewPackGet
		if errors.Is(err, goleveldb.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	e.packs.mu.Lock()
	ok, err := e.holdsLocked(mh)
	e.packs.mu.Unlock()
	return ok, err
}

// rewritePacks, in a collection, rewrites every pack less than half of
// whose bytes are live blocks into the newest pack, and removes packs
// with none: it returns the bytes given back. Blocks are copied record
// by record, as they are. The new records and their index entries are
// durable before the old pack's committed length is removed, and the
// pack file is removed last: a crash in between leaves a pack the next
// open removes.
func (e *Embedded) rewritePacks(ctx context.Context) (int64, error) {
	p := e.packs
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := e.commitLocked(); err != nil {
		return 0, err
	}
	live := map[uint64]int64{}
	it := e.db.NewIterator(util.BytesPrefix([]byte(packKeyPrefix)), nil)
	for it.Next() {
		if loc, err := decodePackLoc(it.Value()); err == nil {
			live[loc.pack] += int64(loc.n)
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return 0, err
	}
	var sparse []uint64
	copies := false
	for num, l := range p.committed {
		if 2*live[num] < l-int64(len(packMagic)) {
			sparse = append(sparse, num)
			copies = copies || live[num] > 0
			if p.cur != nil && num == p.curNum {
				p.cur = nil // it is removed: the next write begins another
			}
		}
	}
	if len(sparse) == 0 {
		return 0, nil
	}
	// The copies go to a new pack, never into one being rewritten.
	if copies {
		if err := p.begin(true); err != nil {
			return 0, err
		}
	}
	var freed int64
	for _, num := range sparse {
		if err := ctx.Err(); err != nil {
			return freed, err
		}
		if err := e.rewritePack(num); err != nil {
			return freed, fmt.Errorf("rewrite pack %d: %w", num, err)
		}
		freed += p.committed[num]
		delete(p.committed, num)
		p.forget(num)
		if err := p.fs.Remove(filepath.Join(p.dir, packName(num))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return freed, err
		}
	}
	return freed, nil
}

// rewritePack copies pack num's live records to the current pack and
// commits them, with the removal of num's committed length.
func (e *Embedded) rewritePack(num uint64) error {
	p := e.packs
	it := e.db.NewIterator(util.BytesPrefix([]byte(packKeyPrefix)), nil)
	defer it.Release()
	f, err := p.file(num)
	if err != nil {
		return err
	}
	for it.Next() {
		loc, err := decodePackLoc(it.Value())
		if err != nil || loc.pack != num {
			continue
		}
		mh := bytes.Clone(it.Key()[len(packKeyPrefix):])
		rec := make([]byte, loc.n)
		if _, err := f.ReadAt(rec, int64(loc.off)); err != nil {
			return err
		}
		if r, err := decodePackRecord(rec); err != nil || !bytes.Equal(r.mh, mh) {
			return fmt.Errorf("record at %d: %w", loc.off, errors.Join(err, errPackRecord))
		}
		if err := e.appendRecord(mh, rec, loc.size); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	p.batch.Delete(packLenKey(num))
	if p.cur == nil || p.committed[p.curNum] == p.curLen {
		// Nothing was copied: the removal is committed alone.
		if err := e.db.Write(p.batch, &opt.WriteOptions{Sync: true}); err != nil {
			return err
		}
		p.batch.Reset()
		return nil
	}
	return e.commitLocked()
}

// blockKey is the LevelDB key of block mh in the tables.
func blockKey(mh multihash.Multihash) []byte { return dshelp.MultihashToDsKey(mh).Bytes() }

// embeddedBlockstore is the store as a boxo blockstore (for the gateway):
// blocks in packs and in the tables alike.
type embeddedBlockstore struct{ e *Embedded }

func (b embeddedBlockstore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	return b.e.Delete(ctx, c)
}

func (b embeddedBlockstore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return b.e.Has(ctx, c)
}

func (b embeddedBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	raw, err := b.e.Get(ctx, c)
	if errors.Is(err, ErrNotFound) {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	if err != nil {
		return nil, err
	}
	return NewBlock(c, raw), nil
}

func (b embeddedBlockstore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if c.Defined() {
		if loc, ok, err := b.e.packLoc(ctx, c.Hash()); err != nil {
			return -1, err
		} else if ok {
			return int(loc.size), nil
		}
	}
	v, err := b.e.db.Get(blockKey(c.Hash()), nil)
	if errors.Is(err, goleveldb.ErrNotFound) {
		return -1, ipld.ErrNotFound{Cid: c}
	}
	if err != nil {
		return -1, err
	}
	return len(v), nil
}

func (b embeddedBlockstore) Put(ctx context.Context, blk blocks.Block) error {
	return b.e.Put(ctx, []blocks.Block{blk})
}

func (b embeddedBlockstore) PutMany(ctx context.Context, blks []blocks.Block) error {
	return b.e.Put(ctx, blks)
}

// AllKeysChan lists every block as a raw CID (the store keeps
// multihashes).
func (b embeddedBlockstore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	ch := make(chan cid.Cid, 64)
	go func() {
		defer close(ch)
		b.e.Walk(ctx, func(mh multihash.Multihash, _ int) error {
			select {
			case ch <- cid.NewCidV1(cid.Raw, mh):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return ch, nil
}

// packLoc is where the packs hold mh, if they do.
func (e *Embedded) packLoc(ctx context.Context, mh multihash.Multihash) (packLoc, bool, error) {
	var v []byte
	var err error
	if e.view != nil {
		v, err = e.view.get(ctx, packKey(mh))
	} else {
		e.packs.mu.Lock()
		loc, ok := e.packs.pending[string(mh)]
		e.packs.mu.Unlock()
		if ok {
			return loc, true, nil
		}
		v, err = e.db.Get(packKey(mh), nil)
	}
	if errors.Is(err, goleveldb.ErrNotFound) {
		return packLoc{}, false, nil
	}
	if err != nil {
		return packLoc{}, false, err
	}
	loc, err := decodePackLoc(v)
	return loc, err == nil, err
}
