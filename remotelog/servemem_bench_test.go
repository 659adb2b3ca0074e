package remotelog_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"rlog/pager"
	"rlog/remotelog"
)

// memPeak samples the process's Go heap in use and resident set size
// every few milliseconds until stopped, and keeps the highest of each.
type memPeak struct {
	stop         chan struct{}
	done         chan struct{}
	heap, rss    uint64
	baseHeap     uint64
	baseRSS      uint64
	samplesTaken int
}

func rssBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func startMemPeak() *memPeak {
	runtime.GC()
	m := &memPeak{stop: make(chan struct{}), done: make(chan struct{}), baseHeap: heapInUse(), baseRSS: rssBytes()}
	go func() {
		defer close(m.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			m.heap = max(m.heap, heapInUse())
			m.rss = max(m.rss, rssBytes())
			m.samplesTaken++
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memPeak) report(b *testing.B) {
	close(m.stop)
	<-m.done
	mb := func(n uint64) float64 { return float64(n) / (1 << 20) }
	b.ReportMetric(mb(m.baseHeap), "base-heap-MB")
	b.ReportMetric(mb(m.heap), "peak-heap-MB")
	b.ReportMetric(mb(m.baseRSS), "base-rss-MB")
	b.ReportMetric(mb(m.rss), "peak-rss-MB")
}

// getAll asks for url from `clients` clients at once, n times in all,
// and discards the answers.
func getAll(b *testing.B, clients, n int, url func(i int) string, header ...string) {
	b.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	for range clients {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest(http.MethodGet, url(i), nil)
				for k := 0; k+1 < len(header); k += 2 {
					req.Header.Set(header[k], header[k+1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body) // a cut CAR ends in an error
				resp.Body.Close()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// linkedLog serves a `linked` log (one message a page) of n messages in
// format v (the deepest DAG a log has: in v1, a lattice of skip links).
func linkedLog(b *testing.B, n int, v uint64) (string, cid.Cid) {
	cfg, err := remotelog.DefaultConfig("linked")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Policy.Format = v
	repo, w, srv, hs := servedRepoConfig(b, cfg)
	var bodies [][]byte
	for i := range n {
		bodies = append(bodies, body(i))
	}
	ctx := context.Background()
	if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
		b.Fatal(err)
	}
	res, err := srv.Publish(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return hs.URL, res.Head
}

// BenchmarkServeMemory: the server's memory (Go heap in use, and the
// resident set of the whole test process, which holds the server and
// clients that discard what they read) while it serves its costliest
// requests over and over: 8 clients at once asking for a dups=n CAR of a
// 2,000-message `linked` log (v1, skip links; v2, index nodes), and 256
// clients at once asking for 20,000 raw blocks of such a log. Each
// iteration repeats the whole load: flat peaks across -benchtime counts
// mean the server keeps nothing per request.
func BenchmarkServeMemory(b *testing.B) {
	for _, v := range []uint64{pager.V1, pager.Version} {
		url, head := linkedLog(b, 2000, v)
		name := "v" + strconv.FormatUint(v, 10)
		b.Run("linked-2000-"+name+"/car-dups=n-x8", func(b *testing.B) {
			m := startMemPeak()
			for b.Loop() {
				getAll(b, 8, 64, func(int) string { return url + "/ipfs/" + head.String() }, "Accept", "application/vnd.ipld.car; order=dfs; dups=n")
			}
			m.report(b)
		})
		// Every page of the log, by CID, from the pages' own links.
		var cids []string
		seen := map[cid.Cid]bool{}
		queue := []cid.Cid{head}
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			if seen[c] {
				continue
			}
			seen[c] = true
			cids = append(cids, c.String())
			_, blk := httpGet(b, url+"/ipfs/"+c.String()+"?format=raw")
			kids, err := pager.Children(blk)
			if err != nil {
				b.Fatal(err)
			}
			for _, k := range kids {
				if k.Prefix().Codec == cid.DagCBOR {
					queue = append(queue, k)
				}
			}
		}
		b.Run("linked-2000-"+name+"/raw-x256", func(b *testing.B) {
			m := startMemPeak()
			for b.Loop() {
				getAll(b, 256, 20000, func(i int) string { return url + "/ipfs/" + cids[i%len(cids)] + "?format=raw" })
			}
			m.report(b)
		})
	}
}
