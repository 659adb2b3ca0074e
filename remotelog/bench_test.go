package remotelog_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/pager"
	"rlog/remotelog"
)

// BenchmarkAppendPublish: append and publish 100,000 messages of 256 B in
// batches of 1,000 (append, then publish, per batch) on the embedded store,
// the repo a user gets from `rlog init`, writing format v3, v2 and v1.
func BenchmarkAppendPublish(b *testing.B) {
	const total, batch = 100_000, 1000
	body := make([]byte, 256)
	for _, format := range []uint64{pager.V3, pager.Version, pager.V1} {
		b.Run(fmt.Sprintf("v%d", format), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				_, repo, w := newRepoWriter(b, format)
				bodies := make([][]byte, batch)
				for i := range bodies {
					bodies[i] = body
				}
				ctx := context.Background()
				b.StartTimer()
				for range total / batch {
					if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
						b.Fatal(err)
					}
					if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				w.Close()
				repo.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// newRepoWriter makes a repo with the default preset writing the given
// format (0: the default) and opens its writer.
func newRepoWriter(b testing.TB, format uint64) (string, *remotelog.Repo, *remotelog.Writer) {
	dir := b.TempDir()
	cfg, _ := remotelog.DefaultConfig("paged")
	cfg.Policy.Format = format
	if _, err := remotelog.Init(dir, cfg); err != nil {
		b.Fatal(err)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	w, err := repo.Writer(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return dir, repo, w
}

// logOnDisk writes and publishes a log of total messages of 256 B in a
// repo on disk, and returns the repo's directory and the log's name.
func logOnDisk(b *testing.B, total int) (string, ipns.Name) {
	dir, repo, w := newRepoWriter(b, 0)
	defer repo.Close()
	defer w.Close()
	bodies := make([][]byte, 10_000)
	for i := range bodies {
		bodies[i] = make([]byte, 256)
	}
	ctx := context.Background()
	for range total / len(bodies) {
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	return dir, w.Name()
}

// logOf builds a published log of n messages of size bytes in memory.
var logs sync.Map

func logOf(b *testing.B, preset string, n, size int) *world {
	key := fmt.Sprint(preset, n, size)
	if w, ok := logs.Load(key); ok {
		return w.(*world)
	}
	base, v, _ := strings.Cut(preset, "-v")
	pol, _ := pager.Preset(base)
	switch v {
	case "1":
		pol.Format = pager.V1
	case "2": // v2 heads, with the pieces of 8 v2 wrote
		pol.Format, pol.TailEntries, pol.TailRatio, pol.HeadEntries = pager.Version, 8, 0, 0
	}
	w := newWorld(b, pol)
	for i := 0; i < n; i += 10_000 {
		w.appendN(b, i, min(10_000, n-i), size)
	}
	w.publish(b)
	logs.Store(key, w)
	return w
}

// BenchmarkCatchUp: a reader k messages behind in a log of 100,000
// messages of 256 B (k = 100,000: from scratch), in format v3 (paged), v2
// and v1.
// Reports rounds of sequential fetches, bytes fetched per message and the
// share of bytes fetched beyond the wire payloads.
func BenchmarkCatchUp(b *testing.B) {
	for _, preset := range []string{"paged", "paged-v2", "paged-v1", "full"} {
		for _, k := range []int{10, 100, 10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/missing=%d", preset, k), func(b *testing.B) {
				w := logOf(b, preset, 100_000, 256)
				var cur remotelog.Cursor
				remotelog.CatchUp(context.Background(), w, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}, func(m remotelog.Message) error {
					if m.Seq == uint64(100_000-k) {
						cur = remotelog.Cursor{Seq: m.Seq, ID: m.ID}
					}
					return nil
				})
				var st remotelog.Stats
				b.ReportAllocs()
				for b.Loop() {
					var err error
					_, st, err = remotelog.CatchUp(context.Background(), w, w.w.Name(), cur, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
					if err != nil || st.Messages != uint64(k) {
						b.Fatalf("%d messages, %v", st.Messages, err)
					}
				}
				b.ReportMetric(float64(st.Rounds), "rounds")
				b.ReportMetric(float64(st.BytesFetched)/float64(k), "B/msg")
				b.ReportMetric(100*float64(st.BytesFetched-st.PayloadBytes)/float64(st.PayloadBytes), "%overhead")
			})
		}
	}
}

// BenchmarkPointerEntry reports what one pointer entry costs in a page.
func BenchmarkPointerEntry(b *testing.B) {
	w := logOf(b, "linked", 2000, 256)
	var st remotelog.Stats
	for b.Loop() {
		_, st, _ = remotelog.CatchUp(context.Background(), w, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
	}
	b.ReportMetric(float64(pager.EntrySize(0, false)), "B/pointer-entry")
	b.ReportMetric(float64(st.Rounds), "rounds")
}

// BenchmarkCatchUpMillion: a reader catches up 1,000,000 messages of 256 B
// from a repo on disk (as `rlog fetch --from DIR` does), with memory
// budgets of 8 and 16 MiB and the default; the heap, sampled while it
// runs, must stay bounded.
func BenchmarkCatchUpMillion(b *testing.B) {
	const total = 1_000_000
	logs.Clear() // logs cached by other benchmarks would raise the GC goal
	dir, name := logOnDisk(b, total)
	ctx := context.Background()
	src, err := remotelog.OpenSource(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	for _, budget := range []int{8 << 20, 16 << 20, 0} {
		b.Run(fmt.Sprintf("budget=%dMiB", budget>>20), func(b *testing.B) {
			var peak atomic.Uint64
			sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			for b.Loop() {
				runtime.GC()
				done := make(chan struct{})
				stopped := make(chan struct{})
				go func() {
					defer close(stopped)
					t := time.NewTicker(time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-done:
							return
						case <-t.C:
							if h := heapNow(sample); h > peak.Load() {
								peak.Store(h)
							}
						}
					}
				}()
				_, st, err := remotelog.CatchUp(ctx, src, name, remotelog.Cursor{}, remotelog.ReadOptions{MemoryBudget: budget}, func(remotelog.Message) error { return nil })
				close(done)
				<-stopped
				if err != nil || st.Messages != total {
					b.Fatalf("%d messages, %v", st.Messages, err)
				}
				b.ReportMetric(float64(st.Rounds), "rounds")
			}
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func heapNow(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkCatchUpSweep: the bytes beyond payloads of a reader 10 and 100
// messages behind (256-B bodies), over the lengths 20,000 + j of a log
// (j = 0..255: every size of the head's page) whose head's page holds the
// reader's cursor, for the paged preset (v3) and v2 heads with uniform
// pieces of 8: mean and worst.
func BenchmarkCatchUpSweep(b *testing.B) {
	for _, preset := range []string{"paged", "paged-v2"} {
		b.Run(preset, func(b *testing.B) {
			base, v, _ := strings.Cut(preset, "-v")
			pol, _ := pager.Preset(base)
			if v == "2" {
				pol.Format, pol.TailEntries, pol.TailRatio, pol.HeadEntries = pager.Version, 8, 0, 0
			}
			for b.Loop() {
				w := newWorld(b, pol)
				w.appendN(b, 0, 20_000, 256)
				sum, worst, runs := map[int]float64{}, map[int]float64{}, map[int]int{}
				for j := range pol.PageEntries {
					if j > 0 {
						w.appendN(b, 20_000+j-1, 1, 256)
					}
					w.publish(b)
					n := 20_000 + j
					all, _, _, err := read(b, w, w, remotelog.Cursor{Seq: uint64(n - 101)})
					if err != nil {
						b.Fatal(err)
					}
					for _, k := range []int{10, 100} {
						if open := (n-1)%pol.PageEntries + 1; open < k+1 {
							continue // the reader needs the sealed page before: not what pieces are for
						}
						m := all[len(all)-k-1]
						_, st, err := remotelog.CatchUp(context.Background(), w, w.w.Name(), remotelog.Cursor{Seq: m.Seq, ID: m.ID}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
						if err != nil || st.Messages != uint64(k) {
							b.Fatalf("%d behind in %d: %d, %v", k, n, st.Messages, err)
						}
						o := 100 * float64(st.BytesFetched-st.PayloadBytes) / float64(st.PayloadBytes)
						sum[k] += o
						worst[k] = max(worst[k], o)
						runs[k]++
					}
				}
				for _, k := range []int{10, 100} {
					b.ReportMetric(sum[k]/float64(runs[k]), fmt.Sprintf("%%mean-k%d", k))
					b.ReportMetric(float64(runs[k]), fmt.Sprintf("lengths-k%d", k))
					b.ReportMetric(worst[k], fmt.Sprintf("%%worst-k%d", k))
				}
			}
		})
	}
}
