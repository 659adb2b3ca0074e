package remotelog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipns"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
)

// KeepTarget is where a keeper holds logs: a store for their blocks (a
// Kubo store also pins each log's head) and a name store for their records.
type KeepTarget struct {
	Store cas.Store
	Names namesys.Publisher
}

// KeepOptions tune Keep.
type KeepOptions struct {
	Follow FollowOptions
	// Republish is how often the newest record is put again, so that it
	// never expires from the routing system (Kubo's DHT keeps records for
	// 48 hours). Default 12 hours.
	Republish time.Duration
	// Kept, when set, hears the record the target holds on start, once its
	// log is complete there, then each record the keeper takes.
	Kept func(rec *namesys.Record)
}

// Keep holds log name, read from src, in target: it follows the log, puts
// every block of it into target (pinning the head where the store pins),
// then the newest signed record, and puts that record again every
// Republish. It cannot sign: it keeps what the writer signed.
//
// A record is stored only after every block it points at, durably: the
// blocks a catch-up fetched are stored before opts.Follow.Save hears a
// cursor that covers them, and before a record is stored the keeper walks
// its log in target and fetches from src whatever is missing there. On
// start it walks the record target already holds the same way, so one
// kept by an interrupted older keeper is completed before it is served
// again.
//
// It runs until ctx ends, or fails with ErrFork when it meets a record
// with the sequence of the one it keeps and another head; it never
// replaces the one it keeps with it.
func Keep(ctx context.Context, src Source, name ipns.Name, cur Cursor, target KeepTarget, opts KeepOptions) (Cursor, error) {
	if opts.Republish <= 0 {
		opts.Republish = 12 * time.Hour
	}
	after := opts.Follow.After
	if after == nil {
		after = time.After
	}
	k := newKeeper(target, src)
	k.kept = opts.Kept
	if err := k.load(ctx, name, opts.Follow.Read.Now); err != nil {
		return cur, err
	}
	tee := &teeSource{src: src, put: k.hold}
	fopts := opts.Follow
	save := opts.Follow.Save
	fopts.Save = func(c Cursor) error {
		// The cursor says these blocks are held: they are, first. A
		// catch-up ended by ctx still stores what it verified.
		if err := k.durable(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		if save != nil {
			return save(c)
		}
		return nil
	}
	fopts.Read.OnRecord = func(rec *namesys.Record) {
		k.mu.Lock()
		k.seen = rec
		k.mu.Unlock()
	}
	fopts.Caught = func(Stats) error { return k.commit(ctx) }
	// Republish in the background.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-rctx.Done():
				return
			case <-after(opts.Republish):
				k.republish(rctx)
			}
		}
	}()
	cur, err := Follow(ctx, tee, name, cur, fopts, func(Message) error { return nil })
	cancel()
	wg.Wait()
	return cur, err
}

// CatchUpKeeping is CatchUp that also keeps what it reads in target, as
// Keep does: every verified block, then the record if it is newer than the
// one held (a fork is an error). A reader that keeps a log reads it again
// from target, without its source.
func CatchUpKeeping(ctx context.Context, src Source, name ipns.Name, cur Cursor, target KeepTarget, opts ReadOptions, deliver func(Message) error) (Cursor, Stats, error) {
	if opts.Now == nil { // the rest is CatchUp's to default (its budget for a long catch-up among them)
		opts.Now = time.Now
	}
	k := newKeeper(target, src)
	if r, ok := target.Names.(namesys.Resolver); ok {
		if rec, err := namesys.Resolve(ctx, r, name, opts.Now()); err == nil {
			k.held = rec
		}
	}
	onRecord := opts.OnRecord
	opts.OnRecord = func(rec *namesys.Record) {
		k.mu.Lock()
		k.seen = rec
		k.mu.Unlock()
		if onRecord != nil {
			onRecord(rec)
		}
	}
	cur, st, err := CatchUp(ctx, &teeSource{src: src, put: k.hold}, name, cur, opts, deliver)
	if err == nil {
		err = k.commit(ctx)
	}
	return cur, st, err
}

type keeper struct {
	target KeepTarget
	src    cas.Getter // verifying: where missing blocks come from
	kept   func(*namesys.Record)
	// complete holds the pages whose whole log is known to be in the
	// target, so each walk before a record only looks at what is new.
	complete map[cid.Cid]bool
	mu       sync.Mutex
	pending  *keepBatch      // what the catch-up fetched, on its way to the target
	seen     *namesys.Record // the record of the catch-up under way
	held     *namesys.Record // the newest record stored in the target
}

func newKeeper(target KeepTarget, src Source) *keeper {
	return &keeper{target: target, src: cas.Verify(src), complete: map[cid.Cid]bool{}, pending: newKeepBatch(target.Store)}
}

// A keepBatch gathers blocks on their way to a keeper's store. Sealed
// pages (in sealed form and numbered before the newest head it saw) go to
// the store's packs where it has them: kept for good, written once. The
// rest go to its tables: heads, tail pieces, window and index nodes,
// which later heads replace and a collection removes, and payloads.
type keepBatch struct {
	store          cas.Store
	packer         cas.Packer
	head           uint64 // the number of the newest head page seen
	tables, packed []blocks.Block
	bytes          int // in both: a large message's blocks must not pile up
}

func newKeepBatch(store cas.Store) *keepBatch {
	packer, _ := store.(cas.Packer)
	return &keepBatch{store: store, packer: packer}
}

// sealed reports whether block c, b is a sealed page of the newest head
// seen, and notes the number of a head: a log's head comes before the
// pages it links.
func (kb *keepBatch) sealed(c cid.Cid, b []byte) bool {
	if c.Prefix().Codec != cid.DagCBOR {
		return false
	}
	p, head, ok := pager.Peek(b)
	if ok && head {
		kb.head = p
	}
	return ok && !head && p < kb.head
}

func (kb *keepBatch) add(ctx context.Context, blk blocks.Block) error {
	if kb.packer != nil && kb.sealed(blk.Cid(), blk.RawData()) {
		kb.packed = append(kb.packed, blk)
	} else {
		kb.tables = append(kb.tables, blk)
	}
	kb.bytes += len(blk.RawData())
	if len(kb.tables)+len(kb.packed) >= 4096 || kb.bytes >= cas.PutBatch {
		return kb.flush(ctx)
	}
	return nil
}

// storeLog stores the blocks cids of a log, read with get, in store: a
// packing store takes its sealed pages into its packs, as a keeper's
// (cids in the order a reader fetched them, each head before the pages it
// links); another loads them all (cas.Load). They are durable once the
// store is synced. It returns how many blocks the store holds of cids.
func storeLog(ctx context.Context, store cas.Store, cids []cid.Cid, get func(context.Context, cid.Cid) ([]byte, error)) (int, error) {
	if _, ok := store.(cas.Packer); !ok {
		return cas.Load(ctx, store, cids, get)
	}
	kb := newKeepBatch(store)
	for i, c := range cids {
		has, err := store.Has(ctx, c)
		if err != nil {
			return i, err
		}
		if has {
			continue
		}
		b, err := get(ctx, c)
		if err != nil {
			return i, err
		}
		if err := kb.add(ctx, cas.NewBlock(c, b)); err != nil {
			return i, err
		}
	}
	return len(cids), kb.flush(ctx)
}

// flush hands the blocks gathered to the store; they are durable once
// the store is synced.
func (kb *keepBatch) flush(ctx context.Context) error {
	packed, tables := kb.packed, kb.tables
	kb.packed, kb.tables, kb.bytes = nil, nil, 0
	if len(packed) > 0 {
		if err := kb.packer.PutPacked(ctx, packed); err != nil {
			return fmt.Errorf("store blocks: %w", err)
		}
	}
	if len(tables) > 0 {
		if err := kb.store.Put(ctx, tables); err != nil {
			return fmt.Errorf("store blocks: %w", err)
		}
	}
	return nil
}

// load takes the record target holds for name, if any, and completes its
// log in target from the source.
func (k *keeper) load(ctx context.Context, name ipns.Name, now func() time.Time) error {
	r, ok := k.target.Names.(namesys.Resolver)
	if !ok {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	rec, err := namesys.Resolve(ctx, r, name, now())
	if err != nil {
		return nil // none, or none valid: the next one replaces it
	}
	k.held = rec
	release := sync.OnceFunc(holdStore(k.target.Store)) // until its blocks are all here
	defer release()
	n, err := k.fill(ctx, rec.Value)
	if err != nil {
		return fmt.Errorf("remotelog: keep: the record held (sequence %d) points at a log that is not complete here: %w", rec.Sequence, err)
	}
	if n > 0 {
		if err := syncStore(ctx, k.target.Store); err != nil {
			return fmt.Errorf("remotelog: keep: %w", err)
		}
	}
	// Complete: it is kept, pinned where the store pins (the record may
	// have been stored there by its writer, not by a keeper), and said so.
	if p, ok := k.target.Store.(pinner); ok {
		if err := p.Pin(ctx, cid.Undef, rec.Value); err != nil {
			return fmt.Errorf("remotelog: keep: pin %s: %w", rec.Value, err)
		}
	}
	release()
	if k.kept != nil {
		k.kept(rec)
	}
	return nil
}

func (k *keeper) hold(c cid.Cid, b []byte) error {
	return k.flushErr(k.pending.add(context.Background(), cas.NewBlock(c, b))) // called under the tee's lock
}

func (k *keeper) flush(ctx context.Context) error { return k.flushErr(k.pending.flush(ctx)) }

func (k *keeper) flushErr(err error) error {
	if err != nil {
		return fmt.Errorf("remotelog: keep: %w", err)
	}
	return nil
}

// durable stores the blocks held back, and makes the store keep them
// through a crash.
func (k *keeper) durable(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.flush(ctx); err != nil {
		return err
	}
	if err := syncStore(ctx, k.target.Store); err != nil {
		return fmt.Errorf("remotelog: keep: %w", err)
	}
	return nil
}

// commit stores what a catch-up fetched, then its record if newer, once
// every block of its log is in the target.
func (k *keeper) commit(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	// No collection of the store from the blocks to the record.
	release := sync.OnceFunc(holdStore(k.target.Store))
	defer release()
	if err := k.flush(ctx); err != nil {
		return err
	}
	rec := k.seen
	if rec == nil {
		return nil
	}
	switch err := namesys.Compare(k.held, rec); {
	case errors.Is(err, ErrFork):
		return fmt.Errorf("remotelog: keep: %w (the one held is kept): one key published two logs; the writer ends it with a newer record (`rlog recover`, then `rlog publish`, on one device)", err)
	case err != nil, k.held != nil && rec.Sequence == k.held.Sequence:
		return nil // older, or the record already held
	}
	// A catch-up from a cursor fetches only what is after it: the log
	// before it must be here already, and is made so.
	if _, err := k.fill(ctx, rec.Value); err != nil {
		return fmt.Errorf("remotelog: keep: record sequence %d: %w", rec.Sequence, err)
	}
	if err := syncStore(ctx, k.target.Store); err != nil {
		return fmt.Errorf("remotelog: keep: %w", err)
	}
	if p, ok := k.target.Store.(pinner); ok {
		var old cid.Cid
		if k.held != nil {
			old = k.held.Value
		}
		if err := p.Pin(ctx, old, rec.Value); err != nil {
			return fmt.Errorf("remotelog: keep: pin %s: %w", rec.Value, err)
		}
	}
	if err := k.target.Names.Publish(ctx, rec.Name, rec.Raw); err != nil {
		return fmt.Errorf("remotelog: keep: store record: %w", err)
	}
	release()
	k.held = rec
	if k.kept != nil {
		k.kept(rec)
	}
	return nil
}

// republish puts the held record again; failures wait for the next round.
func (k *keeper) republish(ctx context.Context) {
	k.mu.Lock()
	rec := k.held
	k.mu.Unlock()
	if rec != nil {
		_ = k.target.Names.Publish(ctx, rec.Name, rec.Raw)
	}
}

// fill walks the log whose head page is head in the target, block by
// block, and fetches from the source every block the target does not have.
// It returns how many it fetched. Raw blocks are only asked for (Has);
// pages and UnixFS nodes are read for their links. Pages already known
// complete are not walked again.
func (k *keeper) fill(ctx context.Context, head cid.Cid) (int, error) {
	seen := map[cid.Cid]bool{}
	var pages []cid.Cid
	batch := newKeepBatch(k.target.Store)
	fetched := 0
	stack := []cid.Cid{head}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return fetched, err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c] || k.complete[c] {
			continue
		}
		seen[c] = true
		codec := c.Prefix().Codec
		if codec != cid.Raw && codec != cid.DagCBOR && codec != cid.DagProtobuf {
			return fetched, fmt.Errorf("%w: block %s: codec %#x is not part of a log", ErrInvalidLog, c, codec)
		}
		has, err := k.target.Store.Has(ctx, c)
		if err != nil {
			return fetched, err
		}
		var b []byte
		switch {
		case !has:
			if b, err = k.src.Get(ctx, c); err != nil {
				return fetched, fmt.Errorf("block %s is missing here; from the source: %w", c, err)
			}
			fetched++
			if err := batch.add(ctx, cas.NewBlock(c, b)); err != nil {
				return fetched, err
			}
		case codec != cid.Raw:
			if b, err = k.target.Store.Get(ctx, c); err != nil {
				return fetched, err
			}
			batch.sealed(c, b) // a head held tells which pages after it are sealed
		}
		switch codec {
		case cid.DagCBOR:
			children, err := pager.Children(b) // a page or an index node
			if err != nil {
				return fetched, fmt.Errorf("page %s: %w", c, err)
			}
			pages = append(pages, c)
			stack = append(stack, children...)
		case cid.DagProtobuf:
			nd, err := merkledag.DecodeProtobuf(b)
			if err != nil {
				return fetched, fmt.Errorf("%w: payload node %s: %w", ErrInvalidLog, c, err)
			}
			for _, l := range nd.Links() {
				stack = append(stack, l.Cid)
			}
		}
	}
	if err := batch.flush(ctx); err != nil {
		return fetched, err
	}
	for _, c := range pages {
		k.complete[c] = true
	}
	return fetched, nil
}
