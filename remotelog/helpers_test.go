package remotelog_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

// patience is how long a test waits for something that happens in
// milliseconds on an idle machine: generous, for a busy 2-core one under
// -race. A wait ends as soon as its condition holds.
const patience = 2 * time.Minute

// world is a writer publishing to memory backends and a source reading them.
type world struct {
	w     *remotelog.Writer
	store *cas.Memory
	names *namesys.Memory
	clock *clock
	cfg   remotelog.WriterConfig
}

// testLifetime is the lifetime of records signed at the tests' fixed times:
// boxo checks a record's end of life against the wall clock too, so a
// record of 2026 must outlive the years the tests will run in.
const testLifetime = 100 * 365 * 24 * time.Hour

// clock is an injected clock that advances one second per call.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func (w *world) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return w.store.Get(ctx, c) }
func (w *world) Resolve(ctx context.Context, n ipns.Name) ([]byte, error) {
	return w.names.Resolve(ctx, n)
}

func newWorld(t testing.TB, pol pager.Policy) *world {
	t.Helper()
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	wd := &world{store: cas.NewMemory(), names: namesys.NewMemory(), clock: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	wd.cfg = remotelog.WriterConfig{
		Dir: t.TempDir(), Key: sk, Store: wd.store, Publisher: wd.names, Resolver: wd.names,
		Policy: pol, Lifetime: testLifetime, TTL: time.Minute, Now: wd.clock.Now,
	}
	if wd.w, err = remotelog.OpenWriter(wd.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wd.w.Close() })
	return wd
}

func (w *world) reopen(t testing.TB) {
	t.Helper()
	w.w.Close()
	var err error
	if w.w, err = remotelog.OpenWriter(w.cfg); err != nil {
		t.Fatal(err)
	}
}

var group = []byte("0123456789abcdef0123456789abcdef")

func body(i int) []byte { return []byte(fmt.Sprintf("message %06d", i)) }

// appendN appends messages from..from+n-1 in one batch.
func (w *world) appendN(t testing.TB, from, n int, size int) {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		b := body(from + i)
		if size > len(b) {
			b = append(b, make([]byte, size-len(b))...)
		}
		bodies[i] = b
	}
	if _, err := w.w.Append(context.Background(), group, bodies); err != nil {
		t.Fatal(err)
	}
}

func (w *world) publish(t testing.TB) remotelog.PublishResult {
	t.Helper()
	res, err := w.w.Publish(context.Background(), remotelog.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// read catches up from cur and returns the messages' sequence numbers.
func read(t testing.TB, src remotelog.Source, w *world, cur remotelog.Cursor) ([]remotelog.Message, remotelog.Cursor, remotelog.Stats, error) {
	t.Helper()
	var got []remotelog.Message
	cur, st, err := remotelog.CatchUp(context.Background(), src, w.w.Name(), cur, remotelog.ReadOptions{Now: w.clock.Now}, func(m remotelog.Message) error {
		got = append(got, m)
		return nil
	})
	return got, cur, st, err
}
