package remotelog_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/internal/netproxy"
	"rlog/pager"
	"rlog/remotelog"
)

// noWait is a retry policy whose backoffs are recorded, not waited.
func noWait(t *testing.T) (remotelog.RetryPolicy, func() []time.Duration) {
	var mu sync.Mutex
	var waits []time.Duration
	seed := uint64(time.Now().UnixNano())
	t.Logf("jitter seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	return remotelog.RetryPolicy{
			Sleep: func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
				return ctx.Err()
			},
			Jitter: func(d time.Duration) time.Duration {
				mu.Lock()
				defer mu.Unlock()
				return d/2 + time.Duration(rng.Int64N(int64(d/2)+1))
			},
		}, func() []time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return slicesClone(waits)
		}
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

// A catch-up through a link that cuts responses halfway completes in one
// run: each cut request is retried, nothing verified is fetched again.
func TestPoolRidesOutCutResponses(t *testing.T) {
	const total = 10_000
	hs, name := servedFormatLog(t, pager.Version, total)
	seed := uint64(time.Now().UnixNano())
	t.Logf("cut seed %d", seed)
	for _, o := range []netproxy.Options{{CutEvery: 10}, {CutRate: 1.0 / 3, Seed: seed}} {
		px := netproxy.StartTB(t, hs.URL, o)
		// The default policy: a cut response does not count against the
		// 8 attempts without an answer, and a request gives up after 32
		// cuts, one request in 3^32 = 1.9e15 at a third cut.
		policy, waits := noWait(t)
		pool := remotelog.NewPool(policy, remotelog.PoolSource{Name: px.URL, Src: remotelog.GatewaySourceWith(px.URL, &http.Client{})})
		var n uint64
		_, st, err := remotelog.CatchUp(context.Background(), pool, name, remotelog.Cursor{}, remotelog.ReadOptions{}, func(m remotelog.Message) error {
			if n++; m.Seq != n {
				t.Fatalf("message %d delivered as %d", m.Seq, n)
			}
			return nil
		})
		if err != nil || st.Messages != total {
			t.Fatalf("%+v: %d messages, %v", o, st.Messages, err)
		}
		c, ps := px.Counts(), pool.Stats()
		t.Logf("%+v: %d requests, %d cut, %d retries, %d bytes on the wire for %d bytes of blocks, waits %v", o, c.Requests, c.Cut, ps.Retries, c.Bytes, st.BytesFetched, waits())
		if c.Cut == 0 || ps.Retries != int64(c.Cut) {
			t.Errorf("%+v: %d responses cut, %d retries: want one retry per cut", o, c.Cut, ps.Retries)
		}
		if len(waits()) != c.Cut {
			t.Errorf("%+v: %d backoffs for %d cuts", o, len(waits()), c.Cut)
		}
		for path, k := range px.Repeated() {
			if k > 1+c.Cut {
				t.Errorf("%s fetched %d times", path, k)
			}
		}
	}
}

// Backoffs double from Base up to Max, each within [d/2, d] by jitter.
func TestRetryBackoffGrowsAndGivesUp(t *testing.T) {
	var calls atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer hs.Close()
	policy, waits := noWait(t)
	policy.Attempts, policy.Base, policy.Max = 6, 100*time.Millisecond, 400*time.Millisecond
	pool := remotelog.NewPool(policy, remotelog.PoolSource{Name: "busy", Src: remotelog.GatewaySourceWith(hs.URL, &http.Client{})})
	_, err := pool.Get(context.Background(), someCID(t))
	if err == nil || !strings.Contains(err.Error(), "giving up after 6 attempts") {
		t.Fatalf("got %v, want giving up after 6 attempts", err)
	}
	if n := calls.Load(); n != 6 {
		t.Errorf("%d requests, want 6", n)
	}
	w := waits()
	want := []time.Duration{100, 200, 400, 400, 400}
	if len(w) != len(want) {
		t.Fatalf("waits %v, want 5", w)
	}
	for i, d := range want {
		d *= time.Millisecond
		if w[i] < d/2 || w[i] > d {
			t.Errorf("wait %d: %s, want within [%s, %s]", i+1, w[i], d/2, d)
		}
	}
}

// What cannot pass is not asked again of the same source: a 404 and a
// block that does not match its CID each cost one request there, then the
// next source is asked.
func TestRetryNotOnPermanentErrors(t *testing.T) {
	c := someCID(t)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, cas.ErrNotFound},
		{"forged", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("not the block")) }, cas.ErrHashMismatch},
	} {
		var bad, good atomic.Int32
		hb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { bad.Add(1); tc.handler(w, r) }))
		defer hb.Close()
		hg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { good.Add(1); w.Write([]byte("hello")) }))
		defer hg.Close()
		policy, waits := noWait(t)
		pool := remotelog.NewPool(policy, remotelog.PoolSource{Name: "bad", Src: remotelog.GatewaySourceWith(hb.URL, &http.Client{})})
		if _, err := pool.Get(context.Background(), c); !errors.Is(err, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if bad.Load() != 1 || len(waits()) != 0 {
			t.Errorf("%s: %d requests and %d backoffs, want 1 and 0", tc.name, bad.Load(), len(waits()))
		}
		pool = remotelog.NewPool(policy,
			remotelog.PoolSource{Name: "bad", Src: remotelog.GatewaySourceWith(hb.URL, &http.Client{})},
			remotelog.PoolSource{Name: "good", Src: remotelog.GatewaySourceWith(hg.URL, &http.Client{})})
		b, err := pool.Get(context.Background(), c)
		if err != nil || string(b) != "hello" {
			t.Fatalf("%s: two sources: %q, %v", tc.name, b, err)
		}
	}
}

func someCID(t *testing.T) cid.Cid {
	t.Helper()
	return blocks.NewBlock([]byte("hello")).Cid()
}

// A run whose retries exceed its budget (RunRetries plus one per request)
// gives up: later failures are final.
func TestRetryRunBudget(t *testing.T) {
	var calls atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer hs.Close()
	policy, _ := noWait(t)
	policy.Attempts, policy.RunRetries = 100, 3
	pool := remotelog.NewPool(policy, remotelog.PoolSource{Name: "busy", Src: remotelog.GatewaySourceWith(hs.URL, &http.Client{})})
	_, err := pool.Get(context.Background(), someCID(t))
	if err == nil || !strings.Contains(err.Error(), "this run retried more than 3 times") {
		t.Fatalf("got %v, want the run's budget spent", err)
	}
	if n := calls.Load(); n > 6 {
		t.Errorf("%d requests for a budget of 3 retries beyond one per request", n)
	}
	// A new request earns one retry, no more.
	calls.Store(0)
	if _, err := pool.Get(context.Background(), someCID(t)); err == nil || calls.Load() > 2 {
		t.Errorf("after the budget: %d requests, %v; want at most 2 and an error", calls.Load(), err)
	}
}

// A source that answers and cuts every response, 20 times in a row (more
// than the 8 attempts a source that does not answer gets), is retried
// until it answers whole; the waits after cuts stay short. One that cuts
// more than Cuts times in a row is given up on, saying so.
func TestPoolCutsAreNotSilence(t *testing.T) {
	body := []byte("hello")
	c := blocks.NewBlock(body).Cid()
	var calls atomic.Int32
	var cutFirst atomic.Int32
	cutFirst.Store(20)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= cutFirst.Load() {
			w.Header().Set("Content-Length", "5")
			w.Write(body[:2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(body)
	}))
	defer hs.Close()
	policy, waits := noWait(t)
	pool := remotelog.NewPool(policy, remotelog.PoolSource{Name: "cutting", Src: remotelog.GatewaySourceWith(hs.URL, &http.Client{})})
	b, err := pool.Get(context.Background(), c)
	if err != nil || string(b) != "hello" {
		t.Fatalf("got %q, %v", b, err)
	}
	if st := pool.Stats(); st.Cuts != 20 || st.Retries != 20 {
		t.Errorf("stats %+v: want 20 cuts and 20 retries", st)
	}
	for _, w := range waits() {
		if w > time.Second {
			t.Errorf("waited %s after a cut: want at most 1 s", w)
		}
	}
	// Cut every time: given up after Cuts.
	calls.Store(0)
	cutFirst.Store(1 << 30)
	policy.Cuts = 5
	pool = remotelog.NewPool(policy, remotelog.PoolSource{Name: "cutting", Src: remotelog.GatewaySourceWith(hs.URL, &http.Client{})})
	if _, err := pool.Get(context.Background(), c); err == nil || !strings.Contains(err.Error(), "giving up after 5 responses cut short") || !errors.Is(err, cas.ErrCut) {
		t.Fatalf("got %v, want giving up after 5 cuts", err)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("%d requests, want 5", n)
	}
}

// Of two sources, one stops answering halfway (its requests held, never
// answered): the catch-up completes from the other, with one notice. The
// requests the stalled one holds move to the other after the hedge delay
// (the attempt timeout far off: only hedging gets past the stall within
// the test's patience), or, hedging off, after the attempt timeout.
func TestPoolFallsBackFromAStalledSource(t *testing.T) {
	const total = 10_000
	hs, name := servedFormatLog(t, pager.Version, total)
	for _, c := range []struct {
		what              string
		timeout, hedgeMin time.Duration
	}{{"hedged", time.Hour, 50 * time.Millisecond}, {"timed out", 2 * time.Second, time.Hour}} {
		stall := netproxy.StartTB(t, hs.URL, netproxy.Options{StallAfter: 10})
		ok := netproxy.StartTB(t, hs.URL, netproxy.Options{})
		policy, _ := noWait(t)
		policy.Timeout, policy.HedgeMin = c.timeout, c.hedgeMin
		pool := remotelog.NewPool(policy,
			remotelog.PoolSource{Name: "stalling", Src: remotelog.GatewaySourceWith(stall.URL, &http.Client{})},
			remotelog.PoolSource{Name: "steady", Src: remotelog.GatewaySourceWith(ok.URL, &http.Client{})})
		var notices []string
		var mu sync.Mutex
		pool.Notice = func(l string) { mu.Lock(); notices = append(notices, l); mu.Unlock() }
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		_, st, err := remotelog.CatchUp(ctx, pool, name, remotelog.Cursor{}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
		if err != nil || st.Messages != total {
			t.Fatalf("%s: %d messages, %v", c.what, st.Messages, err)
		}
		ps := pool.Stats()
		t.Logf("%s: stalling source: %+v; steady: %+v; notices %q; pool %+v", c.what, stall.Counts(), ok.Counts(), notices, ps)
		if stall.Counts().Stalled == 0 {
			t.Fatalf("%s: the stalling source never stalled", c.what)
		}
		if (ps.Hedges > 0) != (c.what == "hedged") {
			t.Errorf("%s: %d hedges", c.what, ps.Hedges)
		}
		if len(notices) != 1 || !strings.Contains(notices[0], "source stalling is not answering") {
			t.Errorf("%s: notices %q, want one about the stalling source", c.what, notices)
		}
		if ps.Using != "steady" {
			t.Errorf("%s: using %s, want steady", c.what, ps.Using)
		}
	}
}

// The hedge delay is learned from the answers: max(HedgeMin, 4 x p90).
func TestPoolHedgeDelayLearned(t *testing.T) {
	var now time.Time
	var mu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		now = now.Add(300 * time.Millisecond) // each answer takes 300 ms of the injected clock
		mu.Unlock()
		w.Write([]byte("hello"))
	}))
	defer hs.Close()
	policy, _ := noWait(t)
	policy.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := remotelog.GatewaySourceWith(hs.URL, &http.Client{})
	pool := remotelog.NewPool(policy, remotelog.PoolSource{Name: "a", Src: src}, remotelog.PoolSource{Name: "b", Src: src})
	if d := pool.Stats().HedgeDelay; d != 3*time.Second {
		t.Errorf("before any answer: hedge delay %s, want Timeout/5 = 3s", d)
	}
	for range 20 {
		if _, err := pool.Get(context.Background(), someCID(t)); err != nil {
			t.Fatal(err)
		}
	}
	if d := pool.Stats().HedgeDelay; d != 1200*time.Millisecond {
		t.Errorf("after answers of 300 ms: hedge delay %s, want 1.2s", d)
	}
}
