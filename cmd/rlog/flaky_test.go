package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/internal/netproxy"
	"rlog/remotelog"
)

// servedLog publishes total messages of 256 B, served by `rlog serve`'s
// gateway on loopback.
func servedLog(t *testing.T, total int) (*httptest.Server, ipns.Name) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "w")
	cfg, _ := remotelog.DefaultConfig("paged")
	if _, err := remotelog.Init(dir, cfg); err != nil {
		t.Fatal(err)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	ctx := context.Background()
	bodies := make([][]byte, total)
	for i := range bodies {
		bodies[i] = bytes.Repeat([]byte{'a' + byte(i%26)}, 256)
	}
	if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
		t.Fatal(err)
	}
	srv := remotelog.NewServer(repo, w, nil)
	if _, err := srv.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := srv.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs, w.Name()
}

// buildRlog builds rlog without the race detector into the test's own
// folder (plainRlog's folder belongs to whichever test made it first).
func buildRlog(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rlog")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build rlog: %v\n%s", err, out)
	}
	return bin
}

// TestFetchKilledAtRandomMoments: `rlog fetch` through a link that cuts 1
// response in 10 is killed with SIGKILL at random moments of a catch-up,
// then run once more to the end: every message is printed, and one is
// printed twice only when a kill landed between printing it and recording
// it (two writes in a row): at most one per kill. RLOG_KILLS sets the
// kills (default 5) and RLOG_KILL_MESSAGES the log's length (default 20,000).
func TestFetchKilledAtRandomMoments(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rlog and runs it many times")
	}
	kills, total := 5, 20_000
	if n, err := strconv.Atoi(os.Getenv("RLOG_KILLS")); err == nil {
		kills = n
	}
	if n, err := strconv.Atoi(os.Getenv("RLOG_KILL_MESSAGES")); err == nil {
		total = n
	}
	bin := buildRlog(t)
	hs, name := servedLog(t, total)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	px, err := netproxy.Start(hs.URL, netproxy.Options{RTT: 100 * time.Millisecond, CutEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	work := t.TempDir()
	outPath := filepath.Join(work, "out")
	var repo string
	fetch := func(killAfter time.Duration) (killed bool) {
		out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "fetch", "--repo", repo, name.String(), "--from", px.URL)
		cmd.Stdout, cmd.Stderr = out, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if killAfter > 0 {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("fetch: %v: %s", err, stderr.String())
				}
				return false
			case <-time.After(killAfter):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				return true
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("fetch: %v: %s", err, stderr.String())
		}
		return false
	}
	initRepo := func(dir string) {
		repo = filepath.Join(work, dir)
		if out, err := exec.Command(bin, "init", "--repo", repo).CombinedOutput(); err != nil {
			t.Fatalf("init: %v: %s", err, out)
		}
	}
	// A clean run first, through the same link: how long a run takes.
	initRepo("clean")
	start := time.Now()
	fetch(0)
	took, clean := time.Since(start), px.Counts()
	os.Remove(outPath)
	px.Reset()
	initRepo("r")
	// Kills at random moments, about kills of them within a clean run's
	// time, until kills have landed or a run completes.
	landed := 0
	for landed < kills {
		if !fetch(time.Duration(rng.Int64N(2*int64(took)/int64(kills)) + 1)) {
			break
		}
		landed++
	}
	fetch(0)
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, total+1)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		seq, err := strconv.Atoi(strings.SplitN(line, "\t", 2)[0])
		if err != nil || seq < 1 || seq > total {
			t.Fatalf("line %q: not a message of the log", line)
		}
		seen[seq]++
	}
	dups := 0
	for seq := 1; seq <= total; seq++ {
		if seen[seq] == 0 {
			t.Fatalf("message %d never printed", seq)
		}
		dups += seen[seq] - 1
	}
	c := px.Counts()
	t.Logf("a run without kills: %s, %d requests, %d bytes", took, clean.Requests, clean.Bytes)
	t.Logf("%d kills landed of %d, %d messages, %d printed twice; the proxy: %d requests, %d cut, %d bytes (%.2fx)", landed, kills, total, dups, c.Requests, c.Cut, c.Bytes, float64(c.Bytes)/float64(clean.Bytes))
	if dups > landed {
		t.Errorf("%d messages printed twice for %d kills", dups, landed)
	}
}

// TestFetchFromTwoSourcesOneStalls: of two sources, one stops answering
// after a few requests; `rlog fetch --from A --from B` completes from the
// other, and says so in one line.
func TestFetchFromTwoSourcesOneStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a stalled source's attempt timeout (15 s)")
	}
	const total = 20_000
	bin := buildRlog(t)
	hs, name := servedLog(t, total)
	stall, err := netproxy.Start(hs.URL, netproxy.Options{StallAfter: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	ok, err := netproxy.Start(hs.URL, netproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	repo := filepath.Join(t.TempDir(), "r")
	if out, err := exec.Command(bin, "init", "--repo", repo).CombinedOutput(); err != nil {
		t.Fatalf("init: %v: %s", err, out)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "fetch", "--repo", repo, name.String(), "--from", stall.URL, "--from", ok.URL)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("fetch: %v: %s", err, stderr.String())
	}
	if n := strings.Count(stdout.String(), "\n"); n != total {
		t.Fatalf("%d messages printed, want %d", n, total)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	t.Logf("stderr: %q; stalled requests %d", lines, stall.Counts().Stalled)
	if len(lines) != 2 || !strings.Contains(lines[0], "source "+stall.URL+" is not answering") {
		t.Errorf("stderr %q: want one notice about %s, then the summary", lines, stall.URL)
	}
}
