package remotelog_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/internal/netproxy"
	"rlog/pager"
	"rlog/remotelog"
)

// flakyFollow is a follower reading `rlog serve` through a proxy that cuts
// a third of responses (seed logged) and restarts every restartEvery (down
// for down), while the writer publishes a few messages every publishEvery
// for run. It checks that every message published is delivered exactly
// once, in order, and returns for each message the time from its publish
// to its delivery and from the proxy's next whole answer after its publish
// (the next successful contact) to its delivery.
type flakyFollow struct {
	restartEvery, down, publishEvery, run time.Duration
	policy                                remotelog.RetryPolicy
	follow                                remotelog.FollowOptions
}

type followLatency struct {
	messages                 int
	fromPublish, fromContact []time.Duration
	proxy                    netproxy.Counts
	pool                     remotelog.PoolStats
}

func (ff flakyFollow) measure(tb testing.TB) followLatency {
	repo := openNewRepoWith(tb, "w", func(*remotelog.Config) {})
	w, err := repo.Writer(nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := remotelog.NewServer(repo, w, nil)
	var mu sync.Mutex
	var published []time.Time // by seq-1
	var answers []time.Time
	publish := func(n int) {
		tb.Helper()
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = make([]byte, 100)
		}
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			tb.Fatal(err)
		}
		if _, err := srv.Publish(ctx); err != nil {
			tb.Fatal(err)
		}
		mu.Lock()
		for range n {
			published = append(published, time.Now())
		}
		mu.Unlock()
	}
	publish(10)
	h, err := srv.Gateway()
	if err != nil {
		tb.Fatal(err)
	}
	gw := httptest.NewServer(h)
	defer gw.Close()
	seed := uint64(time.Now().UnixNano())
	tb.Logf("cut seed %d", seed)
	px := netproxy.StartTB(tb, gw.URL, netproxy.Options{CutRate: 1.0 / 3, Seed: seed, RestartEvery: ff.restartEvery, RestartDown: ff.down,
		OnAnswer: func(string) {
			mu.Lock()
			answers = append(answers, time.Now())
			mu.Unlock()
		}})
	pool := remotelog.NewPool(ff.policy, remotelog.PoolSource{Name: "proxy", Src: remotelog.GatewaySourceWith(px.URL, &http.Client{})})
	delivered := map[uint64]time.Time{}
	var followErrs []string
	status := ff.follow.Status
	ff.follow.Status = func(s remotelog.FollowStatus) {
		if s.Err != nil {
			mu.Lock()
			followErrs = append(followErrs, fmt.Sprintf("at %s: %v (next look in %s)", time.Since(published[0]).Round(time.Millisecond), s.Err, s.Wait))
			mu.Unlock()
		}
		if status != nil {
			status(s)
		}
	}
	var last uint64
	arrived := make(chan uint64, 1)
	done := make(chan error, 1)
	go func() {
		_, err := remotelog.Follow(ctx, pool, w.Name(), remotelog.Cursor{}, ff.follow, func(m remotelog.Message) error {
			mu.Lock()
			if _, twice := delivered[m.Seq]; twice || m.Seq != last+1 {
				tb.Errorf("message %d after %d (delivered before: %v)", m.Seq, last, twice)
			}
			delivered[m.Seq] = time.Now()
			last = m.Seq
			mu.Unlock()
			select {
			case arrived <- m.Seq:
			default:
			}
			return nil
		})
		done <- err
	}()
	end := time.Now().Add(ff.run)
	tick := time.NewTicker(ff.publishEvery)
	for time.Now().Before(end) {
		<-tick.C
		publish(3)
	}
	tick.Stop()
	mu.Lock()
	total := uint64(len(published))
	mu.Unlock()
	deadline := time.After(patience)
	for {
		mu.Lock()
		got := last
		mu.Unlock()
		if got >= total {
			break
		}
		select {
		case <-arrived:
		case <-deadline:
			tb.Fatalf("%d of %d messages delivered", got, total)
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	var out followLatency
	out.messages = int(total)
	var worst uint64
	for seq := uint64(1); seq <= total; seq++ {
		if worst == 0 || delivered[seq].Sub(published[seq-1]) > delivered[worst].Sub(published[worst-1]) {
			worst = seq
		}
	}
	at := func(t time.Time) time.Duration { return t.Sub(published[0]).Round(time.Millisecond) }
	tb.Logf("slowest from publish: message %d, published at %s, delivered at %s; the follower's errors: %s", worst, at(published[worst-1]), at(delivered[worst]), followErrs)
	for seq := uint64(1); seq <= total; seq++ {
		td, pub := delivered[seq], published[seq-1]
		out.fromPublish = append(out.fromPublish, td.Sub(pub))
		k, _ := slices.BinarySearchFunc(answers, pub, func(a, t time.Time) int { return a.Compare(t) })
		if k < len(answers) && !answers[k].After(td) {
			out.fromContact = append(out.fromContact, td.Sub(answers[k]))
		}
	}
	out.proxy, out.pool = px.Counts(), pool.Stats()
	return out
}

// quantiles is the median, the 99th percentile and the largest of d.
func quantiles(d []time.Duration) (p50, p99, top time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0, 0, 0
	}
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

// TestFollowThroughAFlakyLink: a follower reads `rlog serve` through a
// proxy that cuts 1 response in 3 and restarts every 700 ms (down 100 ms),
// time scaled down from BenchmarkFollowFlaky's; every message published is
// delivered exactly once, in order. The delays are logged.
func TestFollowThroughAFlakyLink(t *testing.T) {
	policy, _ := noWait(t)
	policy.Sleep = nil // a real wait, scaled: 10 ms doubling to 50 ms
	policy.Base, policy.Max = 10*time.Millisecond, 50*time.Millisecond
	r := flakyFollow{restartEvery: 700 * time.Millisecond, down: 100 * time.Millisecond, publishEvery: 40 * time.Millisecond, run: 2500 * time.Millisecond,
		policy: policy,
		follow: remotelog.FollowOptions{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, MaxRetryInterval: 100 * time.Millisecond},
	}.measure(t)
	p50, p99, top := quantiles(r.fromContact)
	_, _, topPub := quantiles(r.fromPublish)
	t.Logf("%d messages; the proxy: %d requests, %d cut, %d restarts; pool %+v; from the next contact to delivery: median %s, p99 %s, max %s; from publish, max %s",
		r.messages, r.proxy.Requests, r.proxy.Cut, r.proxy.Restarts, r.pool, p50, p99, top, topPub)
	if r.proxy.Restarts == 0 || r.proxy.Cut == 0 {
		t.Errorf("the link neither restarted nor cut: %+v", r.proxy)
	}
}

// BenchmarkFollowFlaky: the follow target at full scale. A
// follower with the CLI's defaults (poll from 1 s, the default retry
// policy) reads `rlog serve` through a proxy cutting 1 response in 3 and
// restarting every 10 s (down 1 s), while 3 messages are published every
// 300 ms for 40 s; every message must arrive exactly once. It reports the
// time from the proxy's next whole answer after a publish (the next
// successful contact) to the delivery, and from the publish.
//
//	go test -run '^$' -bench FollowFlaky -benchtime 1x ./remotelog
func BenchmarkFollowFlaky(b *testing.B) {
	for range b.N {
		r := flakyFollow{restartEvery: 10 * time.Second, down: time.Second, publishEvery: 300 * time.Millisecond, run: 40 * time.Second}.measure(b)
		p50, p99, top := quantiles(r.fromContact)
		pp50, pp99, ptop := quantiles(r.fromPublish)
		b.Logf("%d messages; the proxy: %d requests, %d cut, %d restarts; pool %+v", r.messages, r.proxy.Requests, r.proxy.Cut, r.proxy.Restarts, r.pool)
		b.Logf("from the next contact to delivery: median %s, p99 %s, max %s; from publish: median %s, p99 %s, max %s", p50, p99, top, pp50, pp99, ptop)
		b.ReportMetric(top.Seconds(), "max-s-after-contact")
		b.ReportMetric(p99.Seconds(), "p99-s-after-contact")
		b.ReportMetric(ptop.Seconds(), "max-s-after-publish")
	}
}

// TestKeepThroughAFlakyLink: a node keeps a log read through a link that
// cuts 1 response in 3; its status shows how far the log is held and the
// source in use.
func TestKeepThroughAFlakyLink(t *testing.T) {
	const total = 3_000
	hs, name := servedFormatLog(t, pager.Version, total)
	seed := uint64(time.Now().UnixNano())
	t.Logf("cut seed %d", seed)
	px := netproxy.StartTB(t, hs.URL, netproxy.Options{CutRate: 1.0 / 3, Seed: seed})
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
