package remotelog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/cas"
)

// Subscriber is the optional ability of a source to push: the returned
// channel receives a value whenever the log may have changed, and is closed
// when the subscription ends (the source went away).
type Subscriber interface {
	Subscribe(ctx context.Context, name ipns.Name) (<-chan struct{}, error)
}

// FollowOptions tune Follow. The zero value polls every second, backing off
// to a minute while nothing changes and to DefaultMaxRetryInterval while
// the source is unreachable.
type FollowOptions struct {
	Read ReadOptions
	// MinInterval and MaxInterval bound the polling interval: it starts at
	// MinInterval, doubles each time nothing changed, and returns to
	// MinInterval when something did.
	MinInterval, MaxInterval time.Duration
	// MaxRetryInterval bounds it instead while the source is unreachable,
	// so that a source back for a short while is not missed; at most
	// MaxInterval. When a source that pushed goes away, the follower looks
	// again at once and then from MinInterval up.
	MaxRetryInterval time.Duration
	// After waits; time.After by default. Tests inject their own.
	After func(d time.Duration) <-chan time.Time
	// Status, when set, hears what the follower does.
	Status func(s FollowStatus)
	// Save, when set, is called with the cursor after every catch-up that
	// delivered something, and after one that failed part way.
	Save func(Cursor) error
	// Caught, when set, is called after every catch-up that succeeded; an
	// error from it ends Follow.
	Caught func(Stats) error
}

// FollowStatus is one report of a follower.
type FollowStatus struct {
	Behind  uint64        // messages to catch up, when catching up starts
	Caught  uint64        // messages delivered by the last catch-up
	Err     error         // the source failed; the follower keeps going
	Wait    time.Duration // time until the next look, when polling
	Pushing bool          // the source pushes changes
}

// DefaultMaxRetryInterval is the longest a follower waits between two
// looks at an unreachable source, unless told otherwise.
const DefaultMaxRetryInterval = 5 * time.Second

// NextInterval is the polling backoff: after a change, min; otherwise
// double, at most max.
func NextInterval(cur, min, max time.Duration, changed bool) time.Duration {
	if changed || cur < min {
		return min
	}
	return minDur(2*cur, max)
}

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// Follow keeps reading log name from src after cur until ctx ends or the
// log is found rewritten: it catches up, then waits for the source's push
// (when it has one) or the polling interval, and catches up again. Source
// failures are reported through Status and retried, at most
// MaxRetryInterval apart; a look that failed after it delivered messages,
// or on a page gone from the head it resolved (the writer published again
// meanwhile), is followed by another at once. A fork stops it with
// ErrFork, and an error from deliver (the reader cannot take the message:
// it cannot open or save it, its output is gone) with that error, after
// Save: looking again would meet the same message. Each message is
// delivered once.
func Follow(ctx context.Context, src Source, name ipns.Name, cur Cursor, opts FollowOptions, deliver func(Message) error) (Cursor, error) {
	var refused error // deliver's error, which ends Follow
	take := func(m Message) error {
		if err := deliver(m); err != nil {
			refused = err
			return err
		}
		return nil
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = time.Second
	}
	if opts.MaxInterval < opts.MinInterval {
		opts.MaxInterval = max(time.Minute, opts.MinInterval)
	}
	if opts.MaxRetryInterval <= 0 {
		opts.MaxRetryInterval = DefaultMaxRetryInterval
	}
	opts.MaxRetryInterval = min(max(opts.MaxRetryInterval, opts.MinInterval), opts.MaxInterval)
	if opts.After == nil {
		opts.After = time.After
	}
	status := opts.Status
	if status == nil {
		status = func(FollowStatus) {}
	}
	var push <-chan struct{}
	interval := time.Duration(0)
	again := false // the last look failed and this one came at once
	for {
		if push == nil {
			if s, ok := src.(Subscriber); ok {
				if ch, err := s.Subscribe(ctx, name); err == nil {
					push = ch
				}
			}
		}
		read := opts.Read
		read.OnHead = func(length uint64) {
			if length > cur.Seq {
				status(FollowStatus{Behind: length - cur.Seq, Pushing: push != nil})
			}
		}
		next, st, err := CatchUp(ctx, src, name, cur, read, take)
		delivered := next.Seq != cur.Seq
		cur = next
		if (delivered || err != nil) && opts.Save != nil {
			if serr := opts.Save(cur); serr != nil {
				return cur, serr
			}
		}
		if ctx.Err() != nil {
			return cur, ctx.Err()
		}
		if refused != nil {
			return cur, refused
		}
		if errors.Is(err, ErrFork) {
			return cur, err
		}
		if err == nil && opts.Caught != nil {
			if cerr := opts.Caught(st); cerr != nil {
				return cur, cerr
			}
		}
		longest := opts.MaxInterval
		if err != nil {
			longest = opts.MaxRetryInterval
		}
		interval = NextInterval(interval, opts.MinInterval, longest, delivered)
		if err != nil && !again && (delivered || errors.Is(err, cas.ErrNotFound)) {
			// The source answers: the look made progress before it failed,
			// or a page of the head it resolved is gone (the writer
			// published a newer one meanwhile). Look again at once, once.
			interval, again = 0, true
		} else {
			again = false
		}
		if err != nil {
			status(FollowStatus{Err: err, Wait: interval})
		} else if st.Messages > 0 {
			status(FollowStatus{Caught: st.Messages, Pushing: push != nil})
		}
		select {
		case <-ctx.Done():
			return cur, ctx.Err()
		case _, ok := <-push:
			if !ok {
				// The source went away: look again now and soon after,
				// and subscribe again when it is back.
				push = nil
				interval = 0
			}
		case <-opts.After(interval):
		}
	}
}

// Subscribe listens to the head events of an `rlog serve` gateway. A
// gateway without them (any other) answers an error, and the caller polls.
func (g *GatewaySource) Subscribe(ctx context.Context, name ipns.Name) (<-chan struct{}, error) {
	u := strings.TrimRight(g.URL, "/") + "/rlog/v1/events?name=" + url.QueryEscape(name.String())
	resp, err := g.eventStream(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("remotelog: %s has no head events (%w)", g.URL, err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: head") {
				select {
				case ch <- struct{}{}:
				default: // one pending signal is enough
				}
			}
		}
	}()
	return ch, nil
}
