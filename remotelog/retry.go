package remotelog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
// What gives up, and when:
//   - a request, after Attempts failures that may pass, across its
//     sources: it fails with the last error;
//   - a run (all requests through one Pool), when its retries exceed
//     RunRetries plus the number of requests made so far, a link failing
//     more than half its requests: every later failure is final.
//
// The zero value is the default of each field.
type RetryPolicy struct {
	Attempts int           // per request; default 8
	Base     time.Duration // first backoff; default 100 ms, doubling per retry
	Max      time.Duration // longest backoff; default 5 s
	// Timeout bounds one attempt, answer and body: a source that stalls
	// fails the attempt after it. Default 15 s.
	Timeout time.Duration
	// RunRetries is the retries a run may make beyond one per request;
	// default 100.
	RunRetries int
	// Down is how long a source that failed 3 requests in a row is
	// skipped while others answer; default 30 s.
	Down time.Duration
	// Sleep waits d or until ctx ends; Now tells the time; Jitter picks
	// the wait for a backoff d (default: uniform in [d/2, d]). Tests
	// inject all three.
	Sleep  func(ctx context.Context, d time.Duration) error
	Now    func() time.Time
	Jitter func(d time.Duration) time.Duration
}

func (p *RetryPolicy) defaults() {
	if p.Attempts <= 0 {
		p.Attempts = 8
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

// backoff is the wait before retry n (1 for the first), before jitter.
func (p *RetryPolicy) backoff(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
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
	mu       sync.Mutex
	using    int // the source that answered last
}

type member struct {
	PoolSource
	get cas.Getter

	mu        sync.Mutex
	failures  int       // requests failed in a row
	downUntil time.Time // skipped until then while others answer
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
	Using    string // the source that answered last
}

// Stats reports the pool's requests, retries and the source in use.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Requests: p.requests.Load(), Retries: p.retries.Load(), Using: p.srcs[p.using].Name}
}

// Get fetches block c from the sources in turn, verified.
func (p *Pool) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	var b []byte
	err := p.do(ctx, int(p.next.Add(1)-1), func(ctx context.Context, m *member) error {
		var err error
		b, err = m.get.Get(ctx, c)
		return err
	})
	return b, err
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
	var raw []byte
	err := p.doOn(ctx, []*member{p.srcs[i]}, 0, func(ctx context.Context, m *member) error {
		b, err := m.Src.Resolve(ctx, name)
		if err != nil {
			return err
		}
		if _, err := namesys.Parse(name, b, p.policy.Now()); err != nil {
			return fmt.Errorf("source %s: %w", m.Name, err)
		}
		raw = b
		return nil
	})
	return raw, err
}

func (p *Pool) do(ctx context.Context, start int, f func(context.Context, *member) error) error {
	return p.doOn(ctx, p.srcs, start, f)
}

// doOn runs request f on the members, from start on in turn: a failure
// that may pass moves it to the next member that has not failed it for
// good, waiting a backoff when that one already failed it.
func (p *Pool) doOn(ctx context.Context, ms []*member, start int, f func(context.Context, *member) error) error {
	p.requests.Add(1)
	refused := make([]bool, len(ms)) // failed this request for good
	tried := make([]bool, len(ms))   // failed this request, may pass
	var last error
	for attempt := 0; ; attempt++ {
		i := p.pick(ms, start+attempt, refused)
		if i < 0 {
			return last
		}
		m := ms[i]
		if tried[i] {
			if p.retries.Load() > int64(p.policy.RunRetries)+p.requests.Load() {
				return fmt.Errorf("%w (giving up: this run retried more than %d times, beyond one per request)", last, p.policy.RunRetries)
			}
			if err := p.policy.Sleep(ctx, p.policy.Jitter(p.policy.backoff(attempt))); err != nil {
				return errors.Join(last, err)
			}
		}
		if attempt > 0 {
			p.retries.Add(1)
		}
		actx, cancel := context.WithTimeout(ctx, p.policy.Timeout)
		err := f(actx, m)
		stalled := err != nil && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		cancel()
		if err == nil {
			p.answered(ms, i)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		reason := briefErr(err)
		if stalled {
			reason = fmt.Sprintf("no answer within %s", p.policy.Timeout)
			err = fmt.Errorf("source %s: %s: %w", m.Name, reason, err)
		}
		last = err
		if Permanent(err) && !stalled {
			refused[i] = true
			continue
		}
		tried[i] = true
		p.failed(m, reason)
		if attempt+1 >= p.policy.Attempts {
			return fmt.Errorf("%w (giving up after %d attempts)", err, attempt+1)
		}
	}
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
		m.down, m.downUntil = true, p.policy.Now().Add(p.policy.Down)
	}
	m.mu.Unlock()
	if notice && p.Notice != nil {
		p.Notice(fmt.Sprintf("source %s is not answering (%s); reading from the others", m.Name, reason))
	}
}

func (p *Pool) answered(ms []*member, i int) {
	m := ms[i]
	m.mu.Lock()
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
