package remotelog_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/internal/netproxy"
	"rlog/pager"
	"rlog/remotelog"
)

// TestFollowThroughAFlakyLink: a follower reads `rlog serve` through a
// proxy that cuts 1 response in 3 and restarts between publishes; every
// message published is delivered exactly once, in order. The delay from a
// publish to its delivery is logged.
func TestFollowThroughAFlakyLink(t *testing.T) {
	repo := openNewRepo(t, "w")
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := remotelog.NewServer(repo, w, nil)
	publish := func(n int) {
		t.Helper()
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = make([]byte, 100)
		}
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	publish(10)
	h, err := srv.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(h)
	defer gw.Close()
	hs := gw.URL
	seed := uint64(time.Now().UnixNano())
	t.Logf("cut seed %d", seed)
	px, err := netproxy.Start(hs, netproxy.Options{CutRate: 1.0 / 3, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	policy, _ := noWait(t)
	pool := remotelog.NewPool(policy, remotelog.PoolSource{Name: "proxy", Src: remotelog.GatewaySourceWith(px.URL, &http.Client{})})
	var mu sync.Mutex
	got := map[uint64]int{}
	var last uint64
	arrived := make(chan uint64, 1000)
	done := make(chan error, 1)
	go func() {
		_, err := remotelog.Follow(ctx, pool, w.Name(), remotelog.Cursor{}, remotelog.FollowOptions{
			MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, MaxRetryInterval: 100 * time.Millisecond,
		}, func(m remotelog.Message) error {
			mu.Lock()
			got[m.Seq]++
			if m.Seq != last+1 {
				t.Errorf("message %d after %d", m.Seq, last)
			}
			last = m.Seq
			mu.Unlock()
			arrived <- m.Seq
			return nil
		})
		done <- err
	}()
	waitFor := func(seq uint64) time.Duration {
		t.Helper()
		start := time.Now()
		deadline := time.After(patience)
		for {
			select {
			case s := <-arrived:
				if s >= seq {
					return time.Since(start)
				}
			case <-deadline:
				t.Fatalf("message %d did not arrive", seq)
			}
		}
	}
	waitFor(10)
	var worst time.Duration
	total := uint64(10)
	for round := range 8 {
		publish(25)
		total += 25
		if round%3 == 2 {
			if err := px.Restart(50 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		worst = max(worst, waitFor(total))
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for seq := uint64(1); seq <= total; seq++ {
		if got[seq] != 1 {
			t.Errorf("message %d delivered %d times", seq, got[seq])
		}
	}
	c := px.Counts()
	t.Logf("%d messages; the proxy: %d requests, %d cut, %d restarts; pool %+v; slowest delivery after a publish %s", total, c.Requests, c.Cut, c.Restarts, pool.Stats(), worst)
}

// TestKeepThroughAFlakyLink: a node keeps a log read through a link that
// cuts 1 response in 3; its status shows how far the log is held and the
// source in use.
func TestKeepThroughAFlakyLink(t *testing.T) {
	const total = 3_000
	hs, name := servedFormatLog(t, pager.Version, total)
	seed := uint64(time.Now().UnixNano())
	t.Logf("cut seed %d", seed)
	px, err := netproxy.Start(hs.URL, netproxy.Options{CutRate: 1.0 / 3, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	policy, _ := noWait(t)
	pool := remotelog.NewPool(policy, remotelog.PoolSource{Name: "flaky proxy", Src: remotelog.GatewaySourceWith(px.URL, &http.Client{})})
	repo := openNewRepo(t, "keeper")
	n := startNode(t, repo, remotelog.NodeConfig{Keep: &remotelog.KeepConfig{Names: []ipns.Name{name}, Source: pool,
		Options: remotelog.KeepOptions{Follow: remotelog.FollowOptions{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond}}}})
	deadline := time.Now().Add(patience)
	for {
		st := n.Status()
		if len(st.Kept) == 1 && st.Kept[0].Seq == total {
			if st.Kept[0].Source != "flaky proxy" || st.Kept[0].Name != name.String() {
				t.Fatalf("kept %+v: want the log, from flaky proxy", st.Kept[0])
			}
			t.Logf("kept %+v; the proxy: %+v", st.Kept[0], px.Counts())
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v: the log not kept whole", st.Kept)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
}
