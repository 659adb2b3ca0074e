package remotelog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/namesys"
)

// RetryPolicy says how a Pool retries a request that failed for a reason
// that may pass: a connection cut, reset or refused, an answer that did
// not come within Timeout, a 5xx. What cannot pass on the same source is
// not retried there: a block not found (a 404 or 504 from a gateway), a
// block that does not match its CID, a record that is not valid; the
// request moves to the next source, and fails when none is left.
//
// Two failures that may pass are told apart: a source that does not
// answer (refused, reset before an answer, no answer within Timeout, an
// error status), and a response cut short after the source answered
// (the headers came, the body was cut: cas.ErrCut). A source that answers
// and cuts is there and making progress; it is retried soon and for
// longer.
//
// What gives up, and when:
//   - a request, after Attempts failures in a row in which no source
//     answered (a cut response, which did answer, starts the count again),
//     or after Cuts responses cut short: it fails with the last error;
//   - a run (all requests through one Pool), when its retries after a
//     source did not answer exceed RunRetries plus the number of requests
//     made so far, a link failing more than half its requests: every later
//     failure is final. Retries after cut responses are bounded per
//     request (Cuts) and do not count here.
//
// With more than one source, a request whose source has not answered
// within the hedge delay is asked of another source too, and the first
// verified answer is taken (a hedged request). The hedge delay is learned
// from the answers seen: max(HedgeMin, 4 x their 90th percentile), over
// the last 128; Timeout/5 before the first. A source that lost to a hedge
// counts as failed, and after 3 failures in a row it is skipped for Down.
//
// The zero value is the default of each field.
type RetryPolicy struct {
	Attempts int           // per request, failures in a row without an answer; default 8
	Cuts     int           // per request, responses cut short; default 32
	Base     time.Duration // first backoff; default 100 ms, doubling per retry
	Max      time.Duration // longest backoff; default 5 s (1 s after a cut)
	// Timeout bounds one attempt, answer and body: a source that stalls
	// fails the attempt after it. Default 15 s.
	Timeout time.Duration
	// HedgeMin is the shortest hedge delay; default 1 s.
	HedgeMin time.Duration
	// RunRetries is the retries a run may make beyond one per request;
	// default 100.
	RunRetries int
	// Down is how long a source that failed 3 requests in a row is
	// skipped while others answer; default 30 s.
	Down time.Duration
	// Sleep waits d or until ctx ends; Now tells the time; Jitter picks
	// the wait for a backoff d (default: uniform in [d/2, d]); After is
	// the hedge timer (default: a real timer). Tests inject them.
	Sleep  func(ctx context.Context, d time.Duration) error
	Now    func() time.Time
	Jitter func(d time.Duration) time.Duration
	After  func(d time.Duration) <-chan time.Time
}

// maxCutBackoff is the longest backoff after a cut response.
const maxCutBackoff = time.Second

func (p *RetryPolicy) defaults() {
	if p.Attempts <= 0 {
		p.Attempts = 8
	}
	if p.Cuts <= 0 {
		p.Cuts = 32
	}
	if p.Base <= 0 {
		p.Base = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 5 * time.Second
	}
	if p.Timeout <= 0 {
		p.Timeout = 15 * time.Second
	}
	if p.HedgeMin <= 0 {
		p.HedgeMin = time.Second
	}
	if p.RunRetries <= 0 {
		p.RunRetries = 100
	}
	if p.Down <= 0 {
		p.Down = 30 * time.Second
	}
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Jitter == nil {
		p.Jitter = func(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }
	}
	if p.After == nil {
		p.After = time.After
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the wait before retry n (1 for the first), before jitter,
// at most longest.
func (p *RetryPolicy) backoff(n int, longest time.Duration) time.Duration {
	d := p.Base
	for i := 1; i < n && d < longest; i++ {
		d *= 2
	}
	return min(d, longest)
}

// Permanent reports whether err cannot pass by asking the same source
// again: a block the source does not have or that does not match its CID,
// a record that is missing or not valid, a read-only store, a payload over
// a limit, a file cut short.
func Permanent(err error) bool {
	for _, e := range []error{cas.ErrNotFound, cas.ErrHashMismatch, cas.ErrReadOnly, cas.ErrTooLarge,
		cas.ErrMalformedFile, cas.ErrTruncated, namesys.ErrNotFound, namesys.ErrInvalid, ErrInvalidLog} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// PoolSource is one source of a Pool and what it is called in notices.
type PoolSource struct {
	Name string
	Src  Source
}

// Pool reads from several sources, or one, as one Source: it spreads
// block requests over them in turn, retries what may pass (RetryPolicy),
// and falls back to the others when one fails or stalls. Every block is
// verified against its CID, and every record checked, before it counts as
// an answer, so a source that lies is one that failed.
type Pool struct {
	srcs   []*member
	policy RetryPolicy
	// Notice, when set, hears one line when a source stops answering and
	// the others are used, and when it answers again.
	Notice func(line string)

	next     atomic.Uint64
	requests atomic.Int64
	retries  atomic.Int64
	silent   atomic.Int64 // retries after no answer, for the run's budget
	cuts     atomic.Int64
	hedges   atomic.Int64
	mu       sync.Mutex
	using    int             // the source that answered last
	took     []time.Duration // how long the last answers took, a ring
	tookNext int
}

type member struct {
	PoolSource
	get cas.Getter

	mu        sync.Mutex
	failures  int       // requests failed in a row
	downUntil time.Time // skipped until then while others answer
	downAt    time.Time // when it was put down
	down      bool
}

// NewPool reads from srcs with policy.
func NewPool(policy RetryPolicy, srcs ...PoolSource) *Pool {
	policy.defaults()
	p := &Pool{policy: policy}
	for _, s := range srcs {
		p.srcs = append(p.srcs, &member{PoolSource: s, get: cas.Verify(s.Src)})
	}
	return p
}

// PoolStats is what a pool did so far.
type PoolStats struct {
	Requests int64  // block and record requests
	Retries  int64  // attempts beyond the first of each request
	Cuts     int64  // responses cut short after the source answered
	Hedges   int64  // requests asked of a second source while the first was slow
	Using    string // the source that answered last
	// HedgeDelay is the current hedge delay (with more than one source).
	HedgeDelay time.Duration
}

// Stats reports the pool's requests, retries and the source in use.
func (p *Pool) Stats() PoolStats {
	d := p.hedgeDelay()
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Requests: p.requests.Load(), Retries: p.retries.Load(), Cuts: p.cuts.Load(), Hedges: p.hedges.Load(),
		Using: p.srcs[p.using].Name, HedgeDelay: d}
}

// Get fetches block c from the sources in turn, verified.
func (p *Pool) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return doOn(p, ctx, p.srcs, int(p.next.Add(1)-1), func(ctx context.Context, m *member) ([]byte, error) {
		return m.get.Get(ctx, c)
	})
}

// Resolve asks every source that answers for the record of name at once
// and returns the valid one of highest sequence; a source whose record is
// not valid counts as failed.
func (p *Pool) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	if len(p.srcs) == 1 {
		return p.resolveOne(ctx, 0, name)
	}
	type answer struct {
		raw []byte
		seq uint64
		err error
	}
	out := make(chan answer, len(p.srcs))
	for i := range p.srcs {
		go func() {
			raw, err := p.resolveOne(ctx, i, name)
			a := answer{raw: raw, err: err}
			if err == nil {
				rec, _ := namesys.Parse(name, raw, p.policy.Now())
				a.seq = rec.Sequence
			}
			out <- a
		}()
	}
	var best answer
	var errs []error
	for range p.srcs {
		a := <-out
		switch {
		case a.err != nil:
			errs = append(errs, a.err)
		case best.raw == nil || a.seq > best.seq:
			best = a
		}
	}
	if best.raw != nil {
		return best.raw, nil
	}
	return nil, errors.Join(errs...)
}

// resolveOne fetches and checks the record of name from source i only.
func (p *Pool) resolveOne(ctx context.Context, i int, name ipns.Name) ([]byte, error) {
	return doOn(p, ctx, []*member{p.srcs[i]}, 0, func(ctx context.Context, m *member) ([]byte, error) {
		b, err := m.Src.Resolve(ctx, name)
		if err != nil {
			return nil, err
		}
		if _, err := namesys.Parse(name, b, p.policy.Now()); err != nil {
			return nil, fmt.Errorf("source %s: %w", m.Name, err)
		}
		return b, nil
	})
}

// doOn runs request f on the members, from start on in turn: a failure
// that may pass moves it to the next member that has not failed it for
// good, waiting a backoff when that one already failed it (RetryPolicy).
func doOn[T any](p *Pool, ctx context.Context, ms []*member, start int, f func(context.Context, *member) (T, error)) (T, error) {
	p.requests.Add(1)
	refused := make([]bool, len(ms)) // failed this request for good
	tried := make([]bool, len(ms))   // failed this request, may pass
	var zero T
	var last error
	silent, cuts := 0, 0 // failures without an answer in a row; cut responses
	cutLast := false
	for attempt := 0; ; attempt++ {
		i := p.pick(ms, start+attempt, refused)
		if i < 0 {
			return zero, last
		}
		if tried[i] {
			wait := p.policy.backoff(silent, p.policy.Max)
			if cutLast {
				wait = p.policy.backoff(cuts, maxCutBackoff)
			} else if p.silent.Load() > int64(p.policy.RunRetries)+p.requests.Load() {
				return zero, fmt.Errorf("%w (giving up: this run retried more than %d times after no answer, beyond one per request)", last, p.policy.RunRetries)
			}
			if err := p.policy.Sleep(ctx, p.policy.Jitter(wait)); err != nil {
				return zero, errors.Join(last, err)
			}
		}
		if attempt > 0 {
			p.retries.Add(1)
			if !cutLast {
				p.silent.Add(1)
			}
		}
		o := hedged(p, ctx, ms, i, refused, f)
		if o.err == nil {
			p.answered(ms, o.i, o.started)
			return o.v, nil
		}
		i, err := o.i, o.err
		m := ms[i]
		if ctx.Err() != nil {
			return zero, err
		}
		reason := briefErr(err)
		if o.stalled {
			reason = fmt.Sprintf("no answer within %s", p.policy.Timeout)
			err = fmt.Errorf("source %s: %s: %w", m.Name, reason, err)
		}
		last = err
		if Permanent(err) && !o.stalled {
			refused[i] = true
			continue
		}
		tried[i] = true
		p.failed(m, reason)
		cutLast = errors.Is(err, cas.ErrCut) && !o.stalled
		if cutLast {
			// The source answered: it is there, and the count of
			// failures without an answer starts again.
			p.cuts.Add(1)
			cuts++
			silent = 0
			if cuts >= p.policy.Cuts {
				return zero, fmt.Errorf("%w (giving up after %d responses cut short)", err, cuts)
			}
			continue
		}
		silent++
		if silent >= p.policy.Attempts {
			return zero, fmt.Errorf("%w (giving up after %d attempts without an answer)", err, silent)
		}
	}
}

// outcome is the end of one attempt at a request, possibly hedged: its
// value or error, the member that gave it, and whether that member's
// attempt ran out of time.
type outcome[T any] struct {
	v       T
	err     error
	i       int
	stalled bool
	started time.Time
}

// hedged runs f on member i within the attempt timeout. With more than one
// member, when i has not answered within the hedge delay, f runs on
// another member too (one not refused, not down if possible) and the first
// answer wins; the member that lost to the hedge counts as failed. A
// failed hedge is returned at once (the first counted as failed too); a
// first attempt that fails after the hedge went out waits for the hedge.
func hedged[T any](p *Pool, ctx context.Context, ms []*member, i int, refused []bool, f func(context.Context, *member) (T, error)) outcome[T] {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the loser
	out := make(chan outcome[T], 2)
	run := func(i int) {
		actx, acancel := context.WithTimeout(ctx, p.policy.Timeout)
		t0 := p.policy.Now()
		v, err := f(actx, ms[i])
		stalled := err != nil && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		acancel()
		if err == nil {
			p.observe(p.policy.Now().Sub(t0))
		}
		out <- outcome[T]{v: v, err: err, i: i, stalled: stalled, started: t0}
	}
	go run(i)
	var hedgeAt <-chan time.Time
	h, delay := -1, time.Duration(0)
	if len(ms) > 1 {
		others := append([]bool(nil), refused...)
		others[i] = true
		if h = p.pick(ms, i+1, others); h >= 0 {
			if delay = p.hedgeDelay(); delay < p.policy.Timeout {
				hedgeAt = p.policy.After(delay)
			}
		}
	}
	pending := 1
	for {
		select {
		case <-hedgeAt:
			hedgeAt = nil
			pending++
			p.hedges.Add(1)
			go run(h)
		case o := <-out:
			pending--
			switch {
			case o.err == nil:
				if o.i == h && pending > 0 {
					p.failed(ms[i], fmt.Sprintf("no answer within %s; %s answered", delay.Round(time.Millisecond), ms[h].Name))
				}
				return o
			case pending == 0:
				return o
			case o.i == h:
				// The hedge failed while the first still has not
				// answered: both count, and the request goes on.
				p.failed(ms[i], fmt.Sprintf("no answer within %s", delay.Round(time.Millisecond)))
				return o
			}
			// The first failed after the hedge went out: it may answer.
		}
	}
}

// observe keeps how long an answer took, for the hedge delay.
func (p *Pool) observe(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.took) < 128 {
		p.took = append(p.took, d)
		return
	}
	p.took[p.tookNext] = d
	p.tookNext = (p.tookNext + 1) % len(p.took)
}

// hedgeDelay is how long a request waits for its source before it is
// asked of another too: max(HedgeMin, 4 x the 90th percentile of the last
// answers), Timeout/5 before any answer; at Timeout or past it, no
// request is hedged.
func (p *Pool) hedgeDelay() time.Duration {
	p.mu.Lock()
	took := slices.Clone(p.took)
	p.mu.Unlock()
	if len(took) == 0 {
		return max(p.policy.HedgeMin, p.policy.Timeout/5)
	}
	slices.Sort(took)
	return min(max(p.policy.HedgeMin, 4*took[len(took)*9/10]), p.policy.Timeout)
}

// pick is the first member from k on (in turn) not refused: one that is
// not down, else any.
func (p *Pool) pick(ms []*member, k int, refused []bool) int {
	now := p.policy.Now()
	fallback := -1
	for j := range ms {
		i := (k + j) % len(ms)
		if refused[i] {
			continue
		}
		if !ms[i].isDown(now) {
			return i
		}
		if fallback < 0 {
			fallback = i
		}
	}
	return fallback
}

func (m *member) isDown(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down && now.Before(m.downUntil)
}

// failed counts a failure that may pass; the third in a row puts the
// member down for a while.
func (p *Pool) failed(m *member, reason string) {
	m.mu.Lock()
	m.failures++
	notice := m.failures == 3 && !m.down && len(p.srcs) > 1
	if m.failures >= 3 {
		if !m.down {
			m.downAt = p.policy.Now()
		}
		m.down, m.downUntil = true, p.policy.Now().Add(p.policy.Down)
	}
	m.mu.Unlock()
	if notice && p.Notice != nil {
		p.Notice(fmt.Sprintf("source %s is not answering (%s); reading from the others", m.Name, reason))
	}
}

// answered counts an answer from member i to an attempt started then; an
// answer to one started before the member was put down does not bring it
// back.
func (p *Pool) answered(ms []*member, i int, started time.Time) {
	m := ms[i]
	m.mu.Lock()
	if m.down && started.Before(m.downAt) {
		m.mu.Unlock()
		return
	}
	back := m.down
	m.failures, m.down = 0, false
	m.mu.Unlock()
	p.mu.Lock()
	for k, s := range p.srcs {
		if s == m {
			p.using = k
		}
	}
	p.mu.Unlock()
	if back && p.Notice != nil && len(p.srcs) > 1 {
		p.Notice(fmt.Sprintf("source %s answers again", m.Name))
	}
}

// briefErr is the innermost message of err, for a one-line notice.
func briefErr(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// Subscribe listens to every source that pushes; the channel is closed
// when any of those subscriptions ends, so that the follower looks again
// and subscribes anew. It fails when no source pushes.
func (p *Pool) Subscribe(ctx context.Context, name ipns.Name) (<-chan struct{}, error) {
	ctx, cancelAll := context.WithCancel(ctx)
	cancel := sync.OnceFunc(cancelAll) // the goroutines below end it
	var chans []<-chan struct{}
	var errs []error
	for _, m := range p.srcs {
		s, ok := m.Src.(Subscriber)
		if !ok {
			continue
		}
		// A source that does not answer the subscription within the
		// attempt timeout is left out: the follower polls it instead.
		mctx, mcancel := context.WithCancel(ctx)
		t := time.AfterFunc(p.policy.Timeout, mcancel)
		ch, err := s.Subscribe(mctx, name)
		if !t.Stop() && err == nil {
			err = fmt.Errorf("source %s: no answer within %s", m.Name, p.policy.Timeout)
		}
		if err != nil {
			mcancel()
			errs = append(errs, err)
			continue
		}
		chans = append(chans, ch)
	}
	if len(chans) == 0 {
		cancel()
		if len(errs) == 0 {
			return nil, errors.New("remotelog: no source pushes")
		}
		return nil, errors.Join(errs...)
	}
	out := make(chan struct{}, 1)
	var mu sync.Mutex
	closed := false
	for _, ch := range chans {
		go func() {
			for range ch {
				mu.Lock()
				if !closed {
					select {
					case out <- struct{}{}:
					default: // one pending is enough
					}
				}
				mu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			if !closed {
				closed = true
				cancel()
				close(out)
			}
		}()
	}
	return out, nil
}
