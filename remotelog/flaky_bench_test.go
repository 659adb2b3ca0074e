package remotelog_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"rlog/internal/netproxy"
	"rlog/pager"
	"rlog/remotelog"
)

// BenchmarkFlakyCatchUp: a catch-up through `rlog serve` behind a proxy
// adding 100 ms of round trip, clean and cutting responses halfway (1 in
// 10, 1 in 3), read through a Pool with its default retry policy: from
// scratch and 10,000 behind on a log of 100,000 messages of 256 B. It
// reports the bytes the proxy sent and the time of one catch-up; the
// targets compare each cut run with the clean one (docs/PERFORMANCE.md).
//
//	go test -run '^$' -bench FlakyCatchUp -benchtime 1x ./remotelog
func BenchmarkFlakyCatchUp(b *testing.B) {
	const total = 100_000
	hs, name := servedFormatLog(b, pager.Version, total)
	for _, behind := range []int{total, 10_000} {
		for _, cut := range []int{0, 10, 3} {
			b.Run(fmt.Sprintf("behind=%d/cut=1in%d", behind, cut), func(b *testing.B) {
				opts := netproxy.Options{RTT: 100 * time.Millisecond, CutEvery: cut}
				px := netproxy.StartTB(b, hs.URL, opts)
				var bytes int64
				var took time.Duration
				for range b.N {
					px.Reset()
					pool := remotelog.NewPool(remotelog.RetryPolicy{}, remotelog.PoolSource{Name: "proxy", Src: remotelog.GatewaySourceWith(px.URL, &http.Client{})})
					start := time.Now()
					_, st, err := remotelog.CatchUp(context.Background(), pool, name, remotelog.Cursor{Seq: uint64(total - behind)}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
					took += time.Since(start)
					if err != nil || st.Messages != uint64(behind) {
						b.Fatalf("%d messages, %v", st.Messages, err)
					}
					c := px.Counts()
					bytes += c.Bytes + c.HeaderBytes
					b.ReportMetric(float64(c.Cut), "cut/op")
					b.ReportMetric(float64(c.Requests), "requests/op")
				}
				b.ReportMetric(float64(bytes)/float64(b.N), "wire-bytes/op")
				b.ReportMetric(took.Seconds()/float64(b.N), "s/op")
			})
		}
	}
}

// BenchmarkFlakyCatchUpRandomCuts: the catch-up of 100,000 messages from
// scratch through a proxy adding 100 ms of round trip and cutting each
// response with probability 1/3 (a new seed each run, logged), with the
// default retry policy: every run must complete. Run it 10 times or more:
//
//	go test -run '^$' -bench FlakyCatchUpRandomCuts -benchtime 10x ./remotelog
func BenchmarkFlakyCatchUpRandomCuts(b *testing.B) {
	const total = 100_000
	hs, name := servedFormatLog(b, pager.Version, total)
	var failed, cuts, retries int
	var took time.Duration
	base := uint64(time.Now().UnixNano())
	for i := range b.N {
		seed := base + uint64(i)
		px, err := netproxy.Start(hs.URL, netproxy.Options{RTT: 100 * time.Millisecond, CutRate: 1.0 / 3, Seed: seed})
		if err != nil {
			b.Fatal(err)
		}
		pool := remotelog.NewPool(remotelog.RetryPolicy{}, remotelog.PoolSource{Name: "proxy", Src: remotelog.GatewaySourceWith(px.URL, &http.Client{})})
		start := time.Now()
		_, st, err := remotelog.CatchUp(context.Background(), pool, name, remotelog.Cursor{}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
		d := time.Since(start)
		took += d
		c, ps := px.Counts(), pool.Stats()
		px.Close()
		cuts += c.Cut
		retries += int(ps.Retries)
		b.Logf("run %d, seed %d: %d messages in %s, %d requests, %d cut, %d retries, %v", i, seed, st.Messages, d.Round(time.Millisecond), c.Requests, c.Cut, ps.Retries, err)
		if err != nil || st.Messages != total {
			failed++
			b.Errorf("run %d (seed %d) did not complete: %d messages, %v", i, seed, st.Messages, err)
		}
	}
	b.ReportMetric(float64(failed), "failed-runs")
	b.ReportMetric(float64(cuts)/float64(b.N), "cut/op")
	b.ReportMetric(float64(retries)/float64(b.N), "retries/op")
	b.ReportMetric(took.Seconds()/float64(b.N), "s/op")
}
