package remotelog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/namesys"
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
	// Kept, when set, hears each record the keeper took.
	Kept func(rec *namesys.Record)
}

// Keep holds log name, read from src, in target: it follows the log, puts
// every block of it into target (pinning the head where the store pins),
// then the newest signed record, and puts that record again every
// Republish. It cannot sign: it keeps what the writer signed. Blocks are
// stored before the record that points at them. It runs until ctx ends, or
// fails with ErrFork when it meets a record with the sequence of the one
// it keeps and another head; it never replaces the one it keeps with it.
func Keep(ctx context.Context, src Source, name ipns.Name, cur Cursor, target KeepTarget, opts KeepOptions) (Cursor, error) {
	if opts.Republish <= 0 {
		opts.Republish = 12 * time.Hour
	}
	after := opts.Follow.After
	if after == nil {
		after = time.After
	}
	k := &keeper{target: target, kept: opts.Kept}
	tee := &teeSource{src: src, put: k.hold}
	fopts := opts.Follow
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
	opts.defaults()
	k := &keeper{target: target}
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
	target  KeepTarget
	kept    func(*namesys.Record)
	mu      sync.Mutex
	pending []blocks.Block
	// bytes in pending: a large message's blocks must not pile up
	pendingBytes int
	seen         *namesys.Record // the record of the catch-up under way
	held         *namesys.Record // the newest record stored in the target
}

func (k *keeper) hold(c cid.Cid, b []byte) error {
	k.pending = append(k.pending, cas.NewBlock(c, b)) // called under the tee's lock
	k.pendingBytes += len(b)
	if len(k.pending) >= 4096 || k.pendingBytes >= cas.PutBatch {
		return k.flush(context.Background())
	}
	return nil
}

func (k *keeper) flush(ctx context.Context) error {
	if len(k.pending) == 0 {
		return nil
	}
	err := k.target.Store.Put(ctx, k.pending)
	k.pending, k.pendingBytes = nil, 0
	if err != nil {
		return fmt.Errorf("remotelog: keep: store blocks: %w", err)
	}
	return nil
}

// commit stores what a catch-up fetched, then its record if newer.
func (k *keeper) commit(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
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
