package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
// folder (plainRlog's folder belongs to whichever test made it first),
// with the build tags given.
func buildRlog(t *testing.T, tags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rlog")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("build rlog: %v\n%s", err, out)
	}
	return bin
}

// TestFetchKilledAtRandomMoments: `rlog fetch NAME >> out` through a link
// that cuts 1 response in 10 is killed with SIGKILL during a catch-up,
// then run once more to the end: out holds every message exactly once,
// byte for byte what a run without kills prints. Half the kills land at
// random moments; one in four lands (through the rlogkillhook build's test
// hook) right after a message is printed and before it is recorded, and
// one in four in the middle of writing a line: the windows a kill at a
// random moment rarely hits. RLOG_KILLS sets the kills (default 8) and
// RLOG_KILL_MESSAGES the log's length (default 20,000); the seed is logged.
func TestFetchKilledAtRandomMoments(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rlog and runs it many times")
	}
	kills, total := 8, 20_000
	if n, err := strconv.Atoi(os.Getenv("RLOG_KILLS")); err == nil {
		kills = n
	}
	if n, err := strconv.Atoi(os.Getenv("RLOG_KILL_MESSAGES")); err == nil {
		total = n
	}
	bin := buildRlog(t, "rlogkillhook")
	hs, name := servedLog(t, total)
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("RLOG_KILL_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (RLOG_KILL_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	px := netproxy.StartTB(t, hs.URL, netproxy.Options{RTT: 100 * time.Millisecond, CutEvery: 10})
	work := t.TempDir()
	outPath := filepath.Join(work, "out")
	var repo string
	var notices []string
	// lastPrinted is the sequence of out's last whole line.
	lastPrinted := func() int {
		f, err := os.Open(outPath)
		if err != nil {
			return 0
		}
		defer f.Close()
		st, _ := f.Stat()
		off := max(0, st.Size()-64<<10)
		b := make([]byte, st.Size()-off)
		n, _ := f.ReadAt(b, off)
		b = b[:n]
		b = b[:bytes.LastIndexByte(b, '\n')+1]
		if len(b) == 0 {
			return 0
		}
		line := b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]
		seq, _ := strconv.Atoi(string(line[:max(0, bytes.IndexByte(line, '\t'))]))
		return seq
	}
	// fetch runs `rlog fetch ... >> out`, killed when out has message
	// killAt (if positive) or by the hook named in env.
	fetch := func(killAt int, env string) (killed bool) {
		out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "fetch", "--repo", repo, name.String(), "--from", px.URL)
		cmd.Stdout, cmd.Stderr = out, &stderr
		cmd.Env = append(os.Environ(), "RLOG_TEST_KILL="+env)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		defer func() {
			for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				if strings.Contains(l, "output file") {
					notices = append(notices, l)
				}
			}
		}()
		var poll <-chan time.Time
		if killAt > 0 {
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			poll = tick.C
		}
		for {
			select {
			case err := <-done:
				if ee, ok := err.(*exec.ExitError); ok && env != "" && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
					return true
				}
				if err != nil {
					t.Fatalf("fetch: %v: %s", err, stderr.String())
				}
				return false
			case <-poll:
				if lastPrinted() >= killAt {
					cmd.Process.Signal(syscall.SIGKILL)
					<-done
					return true
				}
			}
		}
	}
	initRepo := func(dir string) {
		repo = filepath.Join(work, dir)
		if out, err := exec.Command(bin, "init", "--repo", repo).CombinedOutput(); err != nil {
			t.Fatalf("init: %v: %s", err, out)
		}
	}
	// A clean run first, through the same link: how long a run takes,
	// what it costs and what it prints.
	initRepo("clean")
	start := time.Now()
	fetch(0, "")
	took, clean := time.Since(start), px.Counts()
	want, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(outPath)
	px.Reset()
	initRepo("r")
	// The kills land at kills places of the catch-up drawn at random
	// (messages, in order): in turn, at a random moment of the run that
	// reaches the place (the test kills it when its output has that
	// message: where the reader's requests stand then is chance), right
	// after that message is printed, at a random moment again, and
	// halfway through the message's line.
	places := make([]int, kills)
	for i := range places {
		places[i] = 1 + rng.IntN(total-1)
	}
	slices.Sort(places)
	landed, hooked := 0, 0
	for _, at := range places {
		at = max(at, lastPrinted()+1)
		var killed bool
		switch landed % 4 {
		case 1, 3:
			killed = fetch(0, fmt.Sprintf("%s:%d", map[int]string{1: "printed", 3: "halfline"}[landed%4], min(at, total)))
			if killed {
				hooked++
			}
		default:
			killed = fetch(at, "")
		}
		if !killed {
			break
		}
		landed++
	}
	fetch(0, "")
	got, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, total+1)
	for _, line := range strings.Split(strings.TrimSpace(string(got)), "\n") {
		seq, err := strconv.Atoi(strings.SplitN(line, "\t", 2)[0])
		if err != nil || seq < 1 || seq > total {
			t.Fatalf("line %q: not a message of the log", line)
		}
		seen[seq]++
	}
	for seq := 1; seq <= total; seq++ {
		if seen[seq] != 1 {
			t.Errorf("message %d printed %d times", seq, seen[seq])
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the output (%d bytes) is not what a run without kills prints (%d bytes)", len(got), len(want))
	}
	c := px.Counts()
	t.Logf("a run without kills: %s, %d requests, %d bytes", took, clean.Requests, clean.Bytes)
	t.Logf("%d kills landed of %d (%d by the hook, after printing or mid-line), %d messages; the proxy: %d requests, %d cut, %d bytes (%.2fx)", landed, kills, hooked, total, c.Requests, c.Cut, c.Bytes, float64(c.Bytes)/float64(clean.Bytes))
	t.Logf("notices: %q", notices)
	rep, again := px.Repeated(), 0
	for _, n := range rep {
		again += n - 1
	}
	t.Logf("%d paths asked more than once, %d requests again in all (a resolve per run, cut responses, requests in flight when a kill landed)", len(rep), again)
	// What is wasted: half of each cut response, and what was in flight
	// when a kill landed (up to a wave: on a loaded machine a kill lands
	// mid-wave more often; 1.35x was seen so). A fetch that read the log
	// again after a kill would be 2x and more.
	if r := float64(c.Bytes) / float64(clean.Bytes); r > 1.5 {
		t.Errorf("%.2fx the bytes of a clean run, want at most 1.5x", r)
	}
}

// TestFetchFromTwoSourcesOneStalls: of two sources, one stops answering
// after a few requests; `rlog fetch --from A --from B` asks the other for
// what the stalled one holds after the hedge delay (well before the 15 s
// attempt timeout), completes, and says so in one line. The time of the
// fetch and of one from the steady source alone are logged.
func TestFetchFromTwoSourcesOneStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rlog and waits for a hedge delay")
	}
	const total = 20_000
	bin := buildRlog(t)
	hs, name := servedLog(t, total)
	stall := netproxy.StartTB(t, hs.URL, netproxy.Options{StallAfter: 5})
	ok := netproxy.StartTB(t, hs.URL, netproxy.Options{})
	repo := filepath.Join(t.TempDir(), "r")
	if out, err := exec.Command(bin, "init", "--repo", repo).CombinedOutput(); err != nil {
		t.Fatalf("init: %v: %s", err, out)
	}
	alone := filepath.Join(t.TempDir(), "alone")
	if out, err := exec.Command(bin, "init", "--repo", alone).CombinedOutput(); err != nil {
		t.Fatalf("init: %v: %s", err, out)
	}
	start := time.Now()
	if out, err := exec.Command(bin, "fetch", "--repo", alone, name.String(), "--from", ok.URL).CombinedOutput(); err != nil {
		t.Fatalf("fetch: %v: %s", err, out)
	}
	tookAlone := time.Since(start)
	ok.Reset()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "fetch", "--repo", repo, name.String(), "--from", stall.URL, "--from", ok.URL)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start = time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("fetch: %v: %s", err, stderr.String())
	}
	t.Logf("the fetch from both took %s; from the steady source alone %s", time.Since(start), tookAlone)
	if n := strings.Count(stdout.String(), "\n"); n != total {
		t.Fatalf("%d messages printed, want %d", n, total)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	t.Logf("stderr: %q; stalled requests %d", lines, stall.Counts().Stalled)
	if len(lines) != 2 || !strings.Contains(lines[0], "source "+stall.URL+" is not answering") {
		t.Errorf("stderr %q: want one notice about %s, then the summary", lines, stall.URL)
	}
}

// TestFollowKilledAfterPrinting: `rlog follow NAME >> out` killed right
// after printing a message and before recording it, then in the middle of
// writing a line, then run until it has caught up: out holds every
// message once, byte for byte what `rlog fetch` prints.
func TestFollowKilledAfterPrinting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rlog and runs it several times")
	}
	const total = 3000
	bin := buildRlog(t, "rlogkillhook")
	hs, name := servedLog(t, total)
	px := netproxy.StartTB(t, hs.URL, netproxy.Options{CutEvery: 10})
	work := t.TempDir()
	initRepo := func(dir string) string {
		repo := filepath.Join(work, dir)
		if out, err := exec.Command(bin, "init", "--repo", repo).CombinedOutput(); err != nil {
			t.Fatalf("init: %v: %s", err, out)
		}
		return repo
	}
	want, err := exec.Command(bin, "fetch", "--repo", initRepo("clean"), name.String(), "--from", px.URL).Output()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	repo := initRepo("r")
	outPath := filepath.Join(work, "out")
	follow := func(env string) *exec.Cmd {
		out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		cmd := exec.Command(bin, "follow", "--repo", repo, name.String(), "--from", px.URL, "--min-interval", "50ms")
		cmd.Stdout = out
		cmd.Env = append(os.Environ(), "RLOG_TEST_KILL="+env)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for _, env := range []string{"printed:1000", "halfline:2000"} {
		err := follow(env).Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("follow with RLOG_TEST_KILL=%s: %v, want killed", env, err)
		}
	}
	cmd := follow("")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(outPath)
		if bytes.Count(b, []byte("\n")) >= total {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%d lines of %d after 2 minutes", bytes.Count(b, []byte("\n")), total)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("follow after SIGTERM: %v", err)
	}
	got, _ := os.ReadFile(outPath)
	if !bytes.Equal(got, want) {
		t.Fatalf("out has %d lines, %d bytes; fetch prints %d lines, %d bytes", bytes.Count(got, []byte("\n")), len(got), bytes.Count(want, []byte("\n")), len(want))
	}
}
