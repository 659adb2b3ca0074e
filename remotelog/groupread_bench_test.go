package remotelog_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/internal/netproxy"
	"rlog/mvds"
	"rlog/remotelog"
)

// BenchmarkGroupCatchUp: a group of members, each behind by a share of
// 50,000 messages (of 100 B), read from one gateway holding every
// member's log (one repo, as 'rlog keep' of the members' names makes it,
// served by its Server as 'rlog serve' does) through a link adding 50 ms
// a request. It reports the wall time, the rounds the proxy saw (the
// resolve included: the members' waves overlap, so it sees them as one)
// and the peak heap while reading and merging, above the heap before (the
// gateway runs in the same process: the peak includes what it allocates
// to serve).
func BenchmarkGroupCatchUp(b *testing.B) {
	for _, members := range []int{50, 200} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) { benchGroupCatchUp(b, members, 50000/members) })
	}
}

func benchGroupCatchUp(b *testing.B, members, each int) {
	ctx := context.Background()
	g := remotelog.Group{Name: "room"}
	cfg, _ := remotelog.DefaultConfig("paged")
	dir := filepath.Join(b.TempDir(), "keeper")
	if _, err := remotelog.Init(dir, cfg); err != nil {
		b.Fatal(err)
	}
	keeper, err := remotelog.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	var prev []byte
	for m := 0; m < members; m++ {
		sk, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			b.Fatal(err)
		}
		w, err := remotelog.OpenWriter(remotelog.WriterConfig{
			Dir: b.TempDir(), Key: sk, Store: keeper.Store(), Publisher: keeper.Names(), Resolver: keeper.Names(),
			Policy: cfg.Policy, Lifetime: remotelog.DefaultLifetime, TTL: remotelog.DefaultTTL,
		})
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
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
		g.Members = append(g.Members, w.Name().String())
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	kw, err := keeper.Writer(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	// The keeper's own log, published once, opens its embedded store.
	if _, err := kw.Append(ctx, nil, [][]byte{[]byte("keeper")}); err != nil {
		b.Fatal(err)
	}
	if _, err := kw.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	kw.Close()
	keeper.Close()
	gw := startGatewayChild(b, dir)
	b.ResetTimer()
	var peak uint64
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		src, err := remotelog.OpenSource(ctx, gw.url)
		if err != nil {
			b.Fatal(err)
		}
		store := remotelog.Groups(b.TempDir())
		gw.call("reset")
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
		cpu0 := cpuTime(b)
		b.StartTimer()
		var n int
		st, err := remotelog.CatchUpGroup(ctx, src, g, store, remotelog.GroupReadOptions{}, func(gm remotelog.GroupMessage) error {
			n++
			return nil
		})
		b.StopTimer()
		cpu += cpuTime(b) - cpu0
		close(stop)
		wg.Wait()
		src.Close()
		if err != nil || n != members*each {
			b.Fatalf("%d of %d messages: %v (%v)", n, members*each, err, st.Errors)
		}
		var counts netproxy.Counts
		if err := json.Unmarshal([]byte(gw.call("counts")), &counts); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(counts.Rounds), "proxy-rounds")
		b.ReportMetric(float64(counts.Requests), "requests")
		if testing.Verbose() {
			b.Logf("member 0: %+v", st.Members[0])
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "reader-cpu-s/op")
	b.ReportMetric(float64(members*each*b.N)/b.Elapsed().Seconds(), "msg/s")
}

const gatewayChildEnv = "RLOG_GATEWAY_CHILD"

// gatewayChild serves the repo in dir as 'rlog serve' does, behind a
// proxy adding 50 ms a request: it prints the proxy's URL, then answers
// "reset" (the proxy's counts) and "counts" (as JSON) read on its input,
// until its input closes.
func gatewayChild(dir string) {
	repo, w, fail := childWriter(dir)
	h, err := remotelog.NewServer(repo, w, nil).Gateway()
	if err != nil {
		fail(err)
	}
	hs := httptest.NewServer(h)
	px, err := netproxy.Start(hs.URL, netproxy.Options{RTT: 50 * time.Millisecond})
	if err != nil {
		fail(err)
	}
	fmt.Println(px.URL)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "reset":
			px.Reset()
			fmt.Println("ok")
		case "counts":
			b, _ := json.Marshal(px.Counts())
			fmt.Println(string(b))
		}
	}
	px.Close()
	hs.Close()
	w.Close()
	repo.Close()
}

// gatewayProc is a gatewayChild the benchmark talks to.
type gatewayProc struct {
	url string
	in  io.Writer
	out *bufio.Scanner
	b   *testing.B
}

// startGatewayChild serves the repo in dir from another process, so the
// reader's heap is measured alone.
func startGatewayChild(b *testing.B, dir string) *gatewayProc {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), gatewayChildEnv+"="+dir)
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	g := &gatewayProc{in: in, out: bufio.NewScanner(out), b: b}
	if !g.out.Scan() || !strings.HasPrefix(g.out.Text(), "http://") {
		b.Fatalf("the gateway did not start: %q", g.out.Text())
	}
	g.url = g.out.Text()
	return g
}

// call sends a command and returns its answer.
func (g *gatewayProc) call(cmd string) string {
	fmt.Fprintln(g.in, cmd)
	if !g.out.Scan() {
		g.b.Fatalf("the gateway did not answer %s", cmd)
	}
	return g.out.Text()
}
