package remotelog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/cas"
	"rlog/namesys"
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
		case <-time.After(10 * time.Second):
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
