package remotelog_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"rlog/internal/netproxy"
	"rlog/mvds"
	"rlog/remotelog"
)

// oneGateway serves the logs of many repos as one trustless gateway:
// /ipns/NAME from the repo of that name, /ipfs/CID from whichever holds it.
type oneGateway struct {
	byName map[string]http.Handler
	all    []http.Handler
}

func (g *oneGateway) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/ipns/"); ok {
		if h := g.byName[strings.Trim(rest, "/")]; h != nil {
			h.ServeHTTP(rw, r)
			return
		}
		http.NotFound(rw, r)
		return
	}
	for _, h := range g.all {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code == http.StatusOK {
			for k, v := range rec.Header() {
				rw.Header()[k] = v
			}
			rw.WriteHeader(rec.Code)
			rw.Write(rec.Body.Bytes())
			return
		}
	}
	http.NotFound(rw, r)
}

// BenchmarkGroupCatchUp: a group of 50 members, each 1,000 messages (of
// 100 B) behind, read from one gateway through a link adding 50 ms a
// request. It reports the wall time, the rounds the proxy saw (the
// resolve included) and the peak heap while reading and merging, above
// the heap before (the 50 writers' repos and gateways are in the same
// process: the peak includes what the gateways allocate to serve).
func BenchmarkGroupCatchUp(b *testing.B) {
	const members, each = 50, 1000
	ctx := context.Background()
	g := remotelog.Group{Name: "room"}
	gw := &oneGateway{byName: map[string]http.Handler{}}
	var prev []byte
	for m := 0; m < members; m++ {
		dir := filepath.Join(b.TempDir(), "repo")
		cfg, _ := remotelog.DefaultConfig("paged")
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
		bodies := make([][]byte, each)
		for i := range bodies {
			bodies[i] = make([]byte, 100)
			binary.BigEndian.PutUint32(bodies[i], uint32(m))
			binary.BigEndian.PutUint32(bodies[i][4:], uint32(i))
		}
		// Each member wrote after reading the previous member's last
		// message: the merge has a chain across members to honour.
		var md *mvds.Metadata
		if prev != nil {
			md = &mvds.Metadata{Parents: [][]byte{prev}}
		}
		out, err := w.AppendMeta(ctx, g.ID(), md, bodies)
		if err != nil {
			b.Fatal(err)
		}
		last := out[len(out)-1].ID
		prev = last[:]
		srv := remotelog.NewServer(repo, w, nil)
		if _, err := srv.Publish(ctx); err != nil {
			b.Fatal(err)
		}
		h, err := srv.Gateway()
		if err != nil {
			b.Fatal(err)
		}
		gw.byName[w.Name().String()] = h
		gw.all = append(gw.all, h)
		g.Members = append(g.Members, w.Name().String())
		b.Cleanup(func() { w.Close(); repo.Close() })
	}
	hs := httptest.NewServer(gw)
	defer hs.Close()
	px, err := netproxy.Start(hs.URL, netproxy.Options{RTT: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer px.Close()
	b.ResetTimer()
	var peak uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		src, err := remotelog.OpenSource(ctx, px.URL)
		if err != nil {
			b.Fatal(err)
		}
		store := remotelog.Groups(b.TempDir())
		px.Reset()
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // sample the heap while reading
			defer wg.Done()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > base.HeapInuse {
					peak = max(peak, ms.HeapInuse-base.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		b.StartTimer()
		var n int
		st, err := remotelog.CatchUpGroup(ctx, src, g, store, remotelog.GroupReadOptions{}, func(gm remotelog.GroupMessage) error {
			n++
			return nil
		})
		b.StopTimer()
		close(stop)
		wg.Wait()
		src.Close()
		if err != nil || n != members*each {
			b.Fatalf("%d of %d messages: %v (%v)", n, members*each, err, st.Errors)
		}
		b.ReportMetric(float64(px.Counts().Rounds), "proxy-rounds")
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(members*each*b.N)/b.Elapsed().Seconds(), "msg/s")
}
