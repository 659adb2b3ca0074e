package remotelog_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"rlog/remotelog"
)

// cpuTime is the process's CPU time so far (user and system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRequest runs one request per iteration and reports the CPU it cost
// (server and client, in this process), the bytes it answered and the
// status, so that the worst requests to serve can be measured.
func benchRequest(b *testing.B, url string, header ...string) {
	b.Helper()
	var cpu time.Duration
	var n int64
	status := 0
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		start := cpuTime(b)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		k, _ := io.Copy(io.Discard, resp.Body) // a cut CAR ends in an error
		resp.Body.Close()
		cpu += cpuTime(b) - start
		n, status = k, resp.StatusCode
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(n), "resp-bytes")
	b.ReportMetric(float64(status), "status")
}

// BenchmarkServeWorstRequests: what the costliest requests to a server
// cost it: CARs of a deep `linked` log (dups=y is refused; dups=n sends
// each block once), and a CAR of a log larger than the CAR limit.
func BenchmarkServeWorstRequests(b *testing.B) {
	_, deep, res, _ := linkedServed(b, 2000)
	head := deep.URL + "/ipfs/" + res.Head.String()
	b.Run("linked-2000/car-dups=y", func(b *testing.B) {
		benchRequest(b, head, "Accept", "application/vnd.ipld.car; order=dfs; dups=y")
	})
	b.Run("linked-2000/car-dups=n", func(b *testing.B) {
		benchRequest(b, head, "Accept", "application/vnd.ipld.car; order=dfs; dups=n")
	})
	b.Run("linked-2000/raw-head", func(b *testing.B) {
		benchRequest(b, head+"?format=raw")
	})
	// 800 messages of 128 KiB: a 100 MiB log, cut at 64 MiB.
	repo, w, srv, big := servedRepoWith(b, 256)
	ctx := context.Background()
	for i := range 800 {
		body := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 64<<10)
		if _, err := w.Append(ctx, repo.DefaultGroup(), [][]byte{body}); err != nil {
			b.Fatal(err)
		}
	}
	res2, err := srv.Publish(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("100MiB/car-all", func(b *testing.B) {
		benchRequest(b, big.URL+"/ipfs/"+res2.Head.String()+"?format=car")
	})
	// A `full` log's head page near 1 MiB, asked for as DAG-JSON: a
	// conversion, which a trustless gateway refuses (406).
	cfg, err := remotelog.DefaultConfig("full")
	if err != nil {
		b.Fatal(err)
	}
	repo3, w3, srv3, full := servedRepoConfig(b, cfg)
	var bodies [][]byte
	for i := range 4000 {
		bodies = append(bodies, bytes.Repeat([]byte{byte(i)}, 200))
	}
	if _, err := w3.Append(ctx, repo3.DefaultGroup(), bodies); err != nil {
		b.Fatal(err)
	}
	res3, err := srv3.Publish(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("full-head/dag-json", func(b *testing.B) {
		benchRequest(b, full.URL+"/ipfs/"+res3.Head.String()+"?format=dag-json")
	})
}
