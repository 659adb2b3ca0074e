package remotelog_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"rlog/remotelog"
)

// BenchmarkPublishMillion publishes a log of N messages none of which is
// published yet (RLOG_PUBLISH_N, default 1,000,000) from the journal into
// the repo's embedded store, as `rlog publish` does after an offline year:
// 255-byte bodies of random base64 (incompressible, as bench/million.sh's
// BODIES=random). Each iteration publishes a fresh copy of the appended
// repo. It reports messages per second of wall time, the CPU seconds the
// publish took (user and system, every core), the bytes it had written to
// the disk against the bytes of the blocks it put (write-amp, from
// /proc/self/io; the journal's compaction included), and the writer's
// repo on disk against the bodies. Run it alone: go test -run X -bench
// PublishMillion -benchtime 1x ./remotelog
func BenchmarkPublishMillion(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("RLOG_PUBLISH_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	src, repo, w := newRepoWriter(b, 0)
	ctx := context.Background()
	raw := make([]byte, 192) // 256 base64 characters
	for i := 0; i < n; {
		bodies := make([][]byte, min(10_000, n-i))
		for j := range bodies {
			rand.Read(raw)
			bodies[j] = []byte(base64.StdEncoding.EncodeToString(raw)[:255])
		}
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			b.Fatal(err)
		}
		i += len(bodies)
	}
	w.Close()
	repo.Close()
	var cpu time.Duration
	var disk, written, put int64
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "repo")
		if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v: %s", err, out)
		}
		b.StartTimer()
		c0, w0 := cpuTime(b), procWriteBytes(b)
		repo, err := remotelog.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		w, err := repo.Writer(nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		res, err := w.Publish(ctx, remotelog.PublishOptions{})
		if err != nil || res.New != uint64(n) {
			b.Fatalf("publish: %d new, %v", res.New, err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if err := repo.Close(); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - c0
		b.StopTimer()
		written, put = procWriteBytes(b)-w0, int64(res.Bytes)
		disk = dirSize(b, dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(written)/float64(put), "write-amp")
	b.ReportMetric(float64(disk)/float64(n*255), "x-bodies")
}

// procWriteBytes is what this process has had written to the disk so far.
func procWriteBytes(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io: write amplification is measured on Linux")
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Skip("no write_bytes in /proc/self/io")
	return 0
}

// dirSize is the disk the files under dir take.
func dirSize(b *testing.B, dir string) int64 {
	out, err := exec.Command("du", "-sk", dir).Output()
	if err != nil {
		b.Fatal(err)
	}
	f := 0
	for i, c := range out {
		if c < '0' || c > '9' {
			f = i
			break
		}
	}
	kb, err := strconv.ParseInt(string(out[:f]), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return kb << 10
}
