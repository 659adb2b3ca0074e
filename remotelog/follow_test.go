package remotelog_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/remotelog"
)

func TestNextInterval(t *testing.T) {
	min, max := time.Second, 10*time.Second
	cur := time.Duration(0)
	var got []time.Duration
	for _, changed := range []bool{false, false, false, false, false, true, false} {
		cur = remotelog.NextInterval(cur, min, max, changed)
		got = append(got, cur)
	}
	want := []time.Duration{1, 2, 4, 8, 10, 1, 2}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("intervals %v, want %v seconds", got, want)
		}
	}
}

// flaky is a source that fails while down is set, and answers gone
// blocks as not found.
type flaky struct {
	*world
	down atomic.Bool
	gone atomic.Int32
}

func (f *flaky) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if f.gone.Add(-1) >= 0 {
		return nil, fmt.Errorf("block %s: %w", c, cas.ErrNotFound)
	}
	return f.world.Get(ctx, c)
}

func (f *flaky) Resolve(ctx context.Context, n ipns.Name) ([]byte, error) {
	if f.down.Load() {
		return nil, errors.New("source offline")
	}
	return f.world.Resolve(ctx, n)
}

// TestFollowPolls follows a source without push on an injected clock:
// new messages arrive once each, the interval backs off while nothing
// changes and resets when something does, and a source outage is reported
// and survived.
func TestFollowPolls(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 5, 0)
	w.publish(t)
	src := &flaky{world: w}
	waits := make(chan time.Duration)
	fire := make(chan time.Time)
	msgs := make(chan remotelog.Message, 100)
	statuses := make(chan remotelog.FollowStatus, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := remotelog.Follow(ctx, src, w.w.Name(), remotelog.Cursor{}, remotelog.FollowOptions{
			Read:   remotelog.ReadOptions{Now: time.Now},
			After:  func(d time.Duration) <-chan time.Time { waits <- d; return fire },
			Status: func(s remotelog.FollowStatus) { statuses <- s },
		}, func(m remotelog.Message) error { msgs <- m; return nil })
		done <- err
	}()
	expect := func(from, n int) {
		t.Helper()
		for i := range n {
			select {
			case m := <-msgs:
				if m.Seq != uint64(from+i) {
					t.Fatalf("got message %d, want %d", m.Seq, from+i)
				}
			case <-time.After(patience):
				t.Fatalf("message %d did not arrive", from+i)
			}
		}
	}
	wait := func(want time.Duration) { t.Helper(); expectWait(t, waits, want) }
	expect(1, 5)
	wait(time.Second)
	w.appendN(t, 5, 3, 0)
	w.publish(t)
	fire <- time.Time{}
	expect(6, 3)
	wait(time.Second) // something changed: back to the shortest interval
	fire <- time.Time{}
	wait(2 * time.Second)
	fire <- time.Time{}
	wait(4 * time.Second)
	src.down.Store(true)
	fire <- time.Time{}
	wait(5 * time.Second) // the source is down: at most DefaultMaxRetryInterval
	fire <- time.Time{}
	wait(5 * time.Second)
	for s := range statuses {
		if s.Err != nil {
			break // the outage was reported
		}
	}
	src.down.Store(false)
	w.appendN(t, 8, 2, 0)
	w.publish(t)
	fire <- time.Time{}
	expect(9, 2)
	wait(time.Second)
	// A page of the head it resolved is gone (published over): it looks
	// again at once, once.
	src.gone.Store(1)
	w.appendN(t, 10, 2, 0)
	w.publish(t)
	fire <- time.Time{}
	wait(0)
	fire <- time.Time{}
	expect(11, 2)
	wait(time.Second)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow ended with %v", err)
	}
	select {
	case m := <-msgs:
		t.Fatalf("message %d delivered twice", m.Seq)
	default:
	}
}

// TestFollowPush follows `rlog serve`: a publish reaches the follower by
// the pushed event alone (its polling timer never fires), and a restarted
// follower resumes from its saved cursor.
func TestFollowPush(t *testing.T) {
	repo, w, srv, hs := servedRepo(t)
	ctx := context.Background()
	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("first")})
	if _, err := srv.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	src, err := remotelog.OpenSource(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var saved atomic.Value
	saved.Store(remotelog.Cursor{})
	follow := func(cur remotelog.Cursor) (chan remotelog.Message, func()) {
		msgs := make(chan remotelog.Message, 10)
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			remotelog.Follow(fctx, src, w.Name(), cur, remotelog.FollowOptions{
				After: func(time.Duration) <-chan time.Time { return nil }, // never: push only
				Save:  func(c remotelog.Cursor) error { saved.Store(c); return nil },
			}, func(m remotelog.Message) error { msgs <- m; return nil })
		}()
		return msgs, func() { cancel(); <-done }
	}
	next := func(msgs chan remotelog.Message) remotelog.Message {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(patience):
			t.Fatal("no message pushed")
		}
		return remotelog.Message{}
	}
	msgs, stop := follow(remotelog.Cursor{})
	if m := next(msgs); string(m.Body) != "first" {
		t.Fatalf("got %q", m.Body)
	}
	for _, b := range []string{"second", "third"} {
		w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte(b)})
		if _, err := srv.Publish(ctx); err != nil {
			t.Fatal(err)
		}
		if m := next(msgs); string(m.Body) != b {
			t.Fatalf("got %q, want %q", m.Body, b)
		}
	}
	stop()
	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("while away")})
	srv.Publish(ctx)
	msgs, stop = follow(saved.Load().(remotelog.Cursor))
	defer stop()
	if m := next(msgs); string(m.Body) != "while away" || m.Seq != 4 {
		t.Fatalf("restarted follower got %d %q", m.Seq, m.Body)
	}
}

// TestFollowReconnectsToPush: when `rlog serve` goes away, the follower
// looks again at once and then soon (never more than MaxRetryInterval
// apart, though its interval had grown), and once serve is back it
// catches up and hears pushes again. Real gateway, injected clock.
func TestFollowReconnectsToPush(t *testing.T) {
	repo, w, srv, _ := servedRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("first")})
	if _, err := srv.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	serve := func(srv *remotelog.Server, addr string) (*http.Server, string) {
		t.Helper()
		h, err := srv.Gateway()
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: h}
		hs.RegisterOnShutdown(srv.CloseStreams)
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
		return hs, ln.Addr().String()
	}
	hs, addr := serve(srv, "127.0.0.1:0")
	src, err := remotelog.OpenSource(ctx, "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	waits := make(chan time.Duration)
	fire := make(chan time.Time)
	msgs := make(chan remotelog.Message, 10)
	done := make(chan error, 1)
	go func() {
		_, err := remotelog.Follow(ctx, src, w.Name(), remotelog.Cursor{}, remotelog.FollowOptions{
			MinInterval: time.Second, MaxInterval: time.Minute,
			After: func(d time.Duration) <-chan time.Time { waits <- d; return fire },
		}, func(m remotelog.Message) error { msgs <- m; return nil })
		done <- err
	}()
	expect := func(body string) {
		t.Helper()
		select {
		case m := <-msgs:
			if string(m.Body) != body {
				t.Fatalf("got %q, want %q", m.Body, body)
			}
		case <-time.After(patience):
			t.Fatalf("%q did not arrive", body)
		}
	}
	wait := func(want time.Duration) { t.Helper(); expectWait(t, waits, want) }
	expect("first")
	wait(time.Second)
	for _, d := range []time.Duration{2, 4, 8, 16} { // nothing changes: the interval grows
		fire <- time.Time{}
		wait(d * time.Second)
	}
	// serve goes away: its stream ends, the follower looks at once, fails,
	// and tries again from the shortest interval up to the retry cap.
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wait(time.Second)
	for _, d := range []time.Duration{2, 4, 5, 5} {
		fire <- time.Time{}
		wait(d * time.Second)
	}
	// serve is back, with a message published while the follower was away.
	srv2 := remotelog.NewServer(repo, w, nil)
	serve(srv2, addr)
	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("second")})
	if _, err := srv2.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	fire <- time.Time{}
	expect("second")
	wait(time.Second)
	// It is subscribed again: a publish arrives without the timer.
	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("third")})
	if _, err := srv2.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	expect("third")
	wait(time.Second)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow ended with %v", err)
	}
}

// expectWait takes the follower's next wait from waits and checks it.
func expectWait(t *testing.T, waits <-chan time.Duration, want time.Duration) {
	t.Helper()
	select {
	case d := <-waits:
		if d != want {
			t.Fatalf("follower waits %s, want %s", d, want)
		}
	case <-time.After(patience):
		t.Fatal("follower did not wait")
	}
}
