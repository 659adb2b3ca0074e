package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

// countingNames counts record puts and checks that the head of each
// record is already held.
type countingNames struct {
	*namesys.Memory
	store *cas.Memory
	puts  chan uint64
	t     *testing.T
}

func (c *countingNames) Publish(ctx context.Context, n ipns.Name, raw []byte) error {
	rec, err := namesys.Parse(n, raw, time.Now())
	if err != nil {
		c.t.Errorf("keeper stored an invalid record: %v", err)
	} else if ok, _ := c.store.Has(ctx, rec.Value); !ok {
		c.t.Errorf("keeper stored a record pointing at %s before holding it", rec.Value)
	}
	c.puts <- rec.Sequence
	return c.Memory.Publish(ctx, n, raw)
}

// TestKeepHoldsALogForAnOfflineWriter: a keeper follows a writer, holds
// every block and the newest record, and puts the record again on
// schedule; once the writer is gone, a new reader reads everything from
// the keeper alone.
func TestKeepHoldsALogForAnOfflineWriter(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 25, 0)
	w.w.Append(context.Background(), group, [][]byte{make([]byte, 300<<10)}) // a UnixFS payload
	w.publish(t)
	src := &flaky{world: w}
	held := cas.NewMemory()
	names := &countingNames{Memory: namesys.NewMemory(), store: held, puts: make(chan uint64, 16), t: t}
	poll, republish := make(chan time.Time), make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := remotelog.Keep(ctx, src, w.w.Name(), remotelog.Cursor{}, remotelog.KeepTarget{Store: held, Names: names}, remotelog.KeepOptions{
			Republish: time.Hour,
			Follow: remotelog.FollowOptions{Read: remotelog.ReadOptions{Now: time.Now}, After: func(d time.Duration) <-chan time.Time {
				if d == time.Hour {
					return republish
				}
				return poll
			}},
		})
		done <- err
	}()
	next := func() uint64 {
		t.Helper()
		select {
		case seq := <-names.puts:
			return seq
		case <-time.After(patience):
			t.Fatal("the keeper stored no record")
		}
		return 0
	}
	if seq := next(); seq != 1 {
		t.Fatalf("first record kept: seq %d", seq)
	}
	w.appendN(t, 26, 10, 0)
	w.publish(t)
	poll <- time.Time{}
	if seq := next(); seq != 2 {
		t.Fatalf("second record kept: seq %d", seq)
	}
	republish <- time.Time{}
	if seq := next(); seq != 2 {
		t.Fatalf("republished seq %d, want the newest, 2", seq)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("keep ended with %v", err)
	}
	// The writer is gone: read from the keeper's stores only.
	src.down.Store(true)
	got, _, err := readAll(t, struct {
		cas.Getter
		namesys.Resolver
	}{held, names.Memory}, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil || len(got) != 36 || len(got[25].Body) != 300<<10 {
		t.Fatalf("read from the keeper: %d messages, %v", len(got), err)
	}
}

// keptLog appends n messages, every third by pointer, and publishes.
func keptLog(t *testing.T, n int) *world {
	t.Helper()
	w := newWorld(t, small(t))
	for i := 0; i < n; i += 3 {
		w.appendN(t, i, 2, 0)
		w.appendN(t, i+2, 1, 4<<10) // over the inline limit: a pointer
	}
	w.publish(t)
	return w
}

// stopAt is a source that cancels a context at its nth block fetch.
type stopAt struct {
	*world
	n, gets atomic.Int64
	cancel  context.CancelFunc
}

func (s *stopAt) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if s.gets.Add(1) == s.n.Load() {
		s.cancel()
	}
	return s.world.Get(ctx, c)
}

// recording is a source that lists the blocks read from it.
type recording struct {
	*world
	mu   sync.Mutex
	cids []cid.Cid
}

func (r *recording) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	r.mu.Lock()
	r.cids = append(r.cids, c)
	r.mu.Unlock()
	return r.world.Get(ctx, c)
}

// keepUntil runs Keep until its first catch-up ends (or, with stop set,
// until stop's fetch ends it), and returns the cursor it saved.
func keepUntil(t *testing.T, src remotelog.Source, w *world, cur remotelog.Cursor, target remotelog.KeepTarget, stop *stopAt) (remotelog.Cursor, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if stop != nil {
		stop.cancel = cancel
	}
	saved := cur
	_, err := remotelog.Keep(ctx, src, w.w.Name(), cur, target, remotelog.KeepOptions{
		Republish: time.Hour,
		Follow: remotelog.FollowOptions{
			Read: remotelog.ReadOptions{Now: time.Now},
			Save: func(c remotelog.Cursor) error { saved = c; return nil },
			After: func(d time.Duration) <-chan time.Time {
				if d != time.Hour {
					cancel() // caught up once
				}
				return nil
			},
		},
	})
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return saved, err
}

// readKept reads the whole log named by the record the keeper's target
// holds, from the target alone; nil when it holds no record yet.
func readKept(t *testing.T, w *world, target remotelog.KeepTarget, names *namesys.Memory) error {
	t.Helper()
	got, _, err := readAll(t, struct {
		cas.Getter
		namesys.Resolver
	}{target.Store, names}, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if errors.Is(err, remotelog.ErrNoLog) {
		return nil
	}
	if err != nil {
		return err
	}
	for i, m := range got {
		if m.Seq != uint64(i+1) || !bytes.HasPrefix(m.Body, body(i)) {
			return fmt.Errorf("message %d: seq %d %.20q", i+1, m.Seq, m.Body)
		}
	}
	if len(got) == 0 {
		return errors.New("the kept record names an empty log")
	}
	return nil
}

// TestKeepStoppedMidCatchUpKeepsNoHoles: a keeper stopped part way through
// a catch-up (SIGTERM) saves a cursor; a new keeper started from it keeps
// a record whose whole log is held, for every point of the stop.
func TestKeepStoppedMidCatchUpKeepsNoHoles(t *testing.T) {
	w := keptLog(t, 300)
	part := 0
	for n := int64(10); n < 140; n += 13 {
		held, names := cas.NewMemory(), namesys.NewMemory()
		target := remotelog.KeepTarget{Store: held, Names: names}
		src := &stopAt{world: w}
		src.n.Store(n)
		cur, err := keepUntil(t, src, w, remotelog.Cursor{}, target, src)
		if err != nil {
			t.Fatalf("stop at fetch %d: %v", n, err)
		}
		if cur.Seq > 0 && cur.Seq < 300 {
			part++
		}
		// What the saved cursor covers is held: read from the keeper's
		// store alone, the log goes at least that far.
		read, _, _ := remotelog.CatchUp(context.Background(), struct {
			cas.Getter
			namesys.Resolver
		}{held, w.names}, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
		if read.Seq < cur.Seq {
			t.Fatalf("stop at fetch %d: the cursor saved says %d messages are held, the store holds %d", n, cur.Seq, read.Seq)
		}
		if err := readKept(t, w, target, names); err != nil {
			t.Fatalf("stop at fetch %d: the first keeper's record: %v", n, err)
		}
		if _, err := keepUntil(t, w, w, cur, target, nil); err != nil {
			t.Fatalf("stop at fetch %d: restart from %d: %v", n, cur.Seq, err)
		}
		if err := readKept(t, w, target, names); err != nil {
			t.Fatalf("stop at fetch %d, restarted from %d: %v", n, cur.Seq, err)
		}
	}
	if part == 0 {
		t.Fatal("no stop fell inside the delivery of messages")
	}
}

// TestKeepCompletesTheRecordItHolds: a keeper that finds its record's log
// incomplete in its store (left so by an older keeper) fetches what is
// missing before serving it again.
func TestKeepCompletesTheRecordItHolds(t *testing.T) {
	w := keptLog(t, 60)
	held, names := cas.NewMemory(), namesys.NewMemory()
	target := remotelog.KeepTarget{Store: held, Names: names}
	cur, err := keepUntil(t, w, w, remotelog.Cursor{}, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Holes: every fifth block, pages and payloads alike.
	rec := &recording{world: w}
	if _, _, err := readAll(t, rec, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, c := range rec.cids {
		if i%5 == 4 {
			held.Delete(context.Background(), c)
		}
	}
	if err := readKept(t, w, target, names); err == nil {
		t.Fatal("the holes were not made")
	}
	if _, err := keepUntil(t, w, w, cur, target, nil); err != nil {
		t.Fatal(err)
	}
	if err := readKept(t, w, target, names); err != nil {
		t.Fatalf("after a restart the keeper still serves holes: %v", err)
	}
}

// TestCatchUpKeepingFromACursor: a reader that read a log without keeping
// it, then keeps it from its cursor on, holds the whole log the record
// names, not only what it read last.
func TestCatchUpKeepingFromACursor(t *testing.T) {
	w := keptLog(t, 60)
	_, cur, err := readAll(t, w, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.appendN(t, 60, 5, 0)
	w.publish(t)
	held, names := cas.NewMemory(), namesys.NewMemory()
	target := remotelog.KeepTarget{Store: held, Names: names}
	if _, _, err := remotelog.CatchUpKeeping(context.Background(), w, w.w.Name(), cur, target, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := readKept(t, w, target, names); err != nil {
		t.Fatalf("read what was kept: %v", err)
	}
}

// packRecorder is an embedded store that records the blocks put to its
// packs.
type packRecorder struct {
	*cas.Embedded
	packed map[cid.Cid]int
}

func (p *packRecorder) PutPacked(ctx context.Context, blks []blocks.Block) error {
	for _, b := range blks {
		p.packed[b.Cid()]++
	}
	return p.Embedded.PutPacked(ctx, blks)
}

// TestKeepPacksSealedPages: a keeper with an embedded store writes the
// log's sealed pages to its packs, each once, and nothing else: not the
// heads, window nodes or tail pieces that later heads replace, which a
// collection then removes. Pages sealed from tail pieces the keeper held
// before are packed when a later catch-up fetches them.
func TestKeepPacksSealedPages(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 29, 0) // pages 0 and 1 sealed, 9 entries in tail pieces
	w.publish(t)
	emb, err := cas.OpenEmbedded(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	store := &packRecorder{Embedded: emb, packed: map[cid.Cid]int{}}
	names := namesys.NewMemory()
	target := remotelog.KeepTarget{Store: store, Names: names}
	ctx := context.Background()
	keep := func(cur remotelog.Cursor) remotelog.Cursor {
		t.Helper()
		cur, _, err := remotelog.CatchUpKeeping(ctx, w, w.w.Name(), cur, target, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return cur
	}
	cur := keep(remotelog.Cursor{})
	w.appendN(t, 29, 6, 0) // page 2 sealed, 5 entries after it
	w.publish(t)
	keep(cur)
	if err := readKept(t, w, target, names); err != nil {
		t.Fatalf("read what was kept: %v", err)
	}
	// The sealed pages, by walking the log kept from its head.
	rec, err := namesys.Resolve(ctx, names, w.w.Name(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hb, err := store.Get(ctx, rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	head, err := pager.Decode(hb)
	if err != nil {
		t.Fatal(err)
	}
	sealed := map[cid.Cid]int{}
	seen := map[cid.Cid]bool{}
	stack := []cid.Cid{rec.Value}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c] || c.Prefix().Codec != cid.DagCBOR {
			continue
		}
		seen[c] = true
		b, err := store.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if pg, err := pager.Decode(b); err == nil && !pg.Head && pg.Number < head.Number {
			sealed[c] = 1
		}
		children, err := pager.Children(b)
		if err != nil {
			t.Fatal(err)
		}
		stack = append(stack, children...)
	}
	if len(sealed) != 3 {
		t.Fatalf("the log has %d sealed pages, want 3", len(sealed))
	}
	if !maps.Equal(store.packed, sealed) {
		t.Fatalf("packed %v, want the sealed pages once each: %v", store.packed, sealed)
	}
}
