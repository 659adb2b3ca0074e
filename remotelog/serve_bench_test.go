package remotelog_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/remotelog"
)

// BenchmarkPushLatency: from a publish returning (through `rlog serve`'s
// owner) to a follower on the server's event stream holding the message.
func BenchmarkPushLatency(b *testing.B) {
	repo, w, srv, hs := servedRepoWith(b, 256)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("start")})
	srv.Publish(ctx)
	src, err := remotelog.OpenSource(ctx, hs.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	got := make(chan time.Time, 1)
	go remotelog.Follow(ctx, src, w.Name(), remotelog.Cursor{}, remotelog.FollowOptions{
		After: func(time.Duration) <-chan time.Time { return nil },
	}, func(remotelog.Message) error { got <- time.Now(); return nil })
	<-got
	var lat []time.Duration
	for b.Loop() {
		w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("pushed")})
		if _, err := srv.Publish(ctx); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		lat = append(lat, (<-got).Sub(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// timed records the latency of every request through it.
type timed struct {
	rt  http.RoundTripper
	mu  sync.Mutex
	lat []time.Duration
}

func (t *timed) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.rt.RoundTrip(r)
	t.mu.Lock()
	t.lat = append(t.lat, time.Since(start))
	t.mu.Unlock()
	return resp, err
}

// BenchmarkServeLoad: 1,000 readers, each 10,000 messages behind in a log
// of 100,000 messages of 256 B, catch up at once from one `rlog serve` on
// loopback. Reports requests per second and the 99th-percentile request
// latency; every reader must get exactly its 10,000 messages.
func BenchmarkServeLoad(b *testing.B) {
	const readers, total, behind = 1000, 100_000, 10_000
	repo, w, srv, hs := servedRepoWith(b, 256)
	ctx := context.Background()
	bodies := make([][]byte, 10_000)
	for i := range bodies {
		bodies[i] = make([]byte, 256)
	}
	for range total / len(bodies) {
		w.Append(ctx, repo.DefaultGroup(), bodies)
	}
	if _, err := srv.Publish(ctx); err != nil {
		b.Fatal(err)
	}
	var start remotelog.Cursor
	src0, _ := remotelog.OpenSource(ctx, hs.URL)
	remotelog.CatchUp(ctx, src0, w.Name(), remotelog.Cursor{Seq: total - behind - 1}, remotelog.ReadOptions{}, func(m remotelog.Message) error {
		if start.Seq == 0 {
			start = remotelog.Cursor{Seq: m.Seq, ID: m.ID}
		}
		return nil
	})
	for b.Loop() {
		tr := &timed{rt: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}
		hc := &http.Client{Transport: tr}
		var wg sync.WaitGroup
		errs := make(chan error, readers)
		begin := time.Now()
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				src := remotelog.GatewaySourceWith(hs.URL, hc)
				_, st, err := remotelog.CatchUp(ctx, src, w.Name(), start, remotelog.ReadOptions{Concurrency: 4}, func(remotelog.Message) error { return nil })
				if err == nil && st.Messages != behind {
					err = fmt.Errorf("%d messages, want %d", st.Messages, behind)
				}
				errs <- err
			}()
		}
		wg.Wait()
		elapsed := time.Since(begin)
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		slices.Sort(tr.lat)
		b.ReportMetric(elapsed.Seconds(), "s-all-readers")
		b.ReportMetric(float64(len(tr.lat))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(tr.lat[len(tr.lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(len(tr.lat)), "requests")
	}
}

// BenchmarkCatchUpServe: a reader 10,000 messages behind in a log of
// 100,000 catches up through `rlog serve` over loopback HTTP.
func BenchmarkCatchUpServe(b *testing.B) {
	repo, w, srv, hs := servedRepoWith(b, 256)
	ctx := context.Background()
	bodies := make([][]byte, 10_000)
	for i := range bodies {
		bodies[i] = make([]byte, 256)
	}
	for range 10 {
		w.Append(ctx, repo.DefaultGroup(), bodies)
	}
	if _, err := srv.Publish(ctx); err != nil {
		b.Fatal(err)
	}
	benchCatchUpFrom(b, hs.URL, w.Name(), 90_000)
}

// benchCatchUpFrom catches up from sequence from through the gateway at url.
func benchCatchUpFrom(b *testing.B, url string, name ipns.Name, from uint64) {
	ctx := context.Background()
	src, err := remotelog.OpenSource(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var st remotelog.Stats
	for b.Loop() {
		_, st, err = remotelog.CatchUp(ctx, src, name, remotelog.Cursor{Seq: from}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Messages), "messages")
	b.ReportMetric(float64(st.Rounds), "rounds")
}
