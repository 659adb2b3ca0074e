package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"rlog/remotelog"
)

// TestLoad is the node's load target, in long mode only: RLOG_LOAD=10m
// runs `rlog run` with serve + sync + keep + follow for that long while
// 1,000 messages a minute are appended through it, a reader fetches from
// its gateway every second and a backup runs in it every minute. It fails
// when the node's resident memory goes over 150 MiB, a command fails, or
// a message is lost or delivered twice (to the reader, the sync peer or
// the node's follower). Its figures are logged (go test -v).
//
//	RLOG_LOAD=10m go test -run TestLoad -v -timeout 30m ./cmd/rlog
func TestLoad(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("RLOG_LOAD"))
	if err != nil {
		t.Skip("long mode: set RLOG_LOAD to a duration (10m) to run it")
	}
	if plainDir == "" {
		plainDir = t.TempDir()
	}
	bin, err := plainRlog()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	w, p, o, r := filepath.Join(work, "w"), filepath.Join(work, "p"), filepath.Join(work, "o"), filepath.Join(work, "r")
	rlog := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GORACE=")
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), fmt.Errorf("rlog %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := rlog(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	name := strings.TrimSpace(must("init", "--repo", w))
	must("init", "--repo", p)
	other := strings.TrimSpace(must("init", "--repo", o))
	must("init", "--repo", r)
	// The writer's first message, published: readers find the log at once.
	must("append", "--repo", w, "--group-name", "load", "load-1")
	must("publish", "--repo", w)
	must("append", "--repo", o, "o-0")
	must("publish", "--repo", o)

	// Background processes: their lines, each kept with its stream.
	start := func(label string, args ...string) (*exec.Cmd, chan string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		lines := make(chan string, 1<<16)
		so, _ := cmd.StdoutPipe()
		se, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, rd := range []interface{ Read([]byte) (int, error) }{so, se} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sc := bufio.NewScanner(rd)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
		}
		go func() { wg.Wait(); close(lines) }()
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, lines
	}
	expect := func(lines chan string, re string) []string {
		t.Helper()
		rx := regexp.MustCompile(re)
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("exited before printing %q", re)
				}
				if m := rx.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-deadline:
				t.Fatalf("nothing matching %q", re)
			}
		}
	}
	_, peerLines := start("peer", "sync", "--repo", p, "--group-name", "load", "--listen", "/ip4/127.0.0.1/tcp/0", "--epoch", "200ms")
	peerAddr := expect(peerLines, `^listening on (/ip4/127\.0\.0\.1/\S+)`)[1]
	node, nodeLines := start("node", "run", "--repo", w, "--serve", "127.0.0.1:0", "--sync", "--group-name", "load", "--epoch", "200ms",
		"--peer", peerAddr, "--keep", other, "--keep-from", o, "--follow", other, "--follow-from", o,
		"--min-interval", "500ms", "--max-interval", "2s", "--publish-every", "5s")

	// What the node prints: the gateway's address first (before it the
	// follower may print), then kept records and followed messages.
	var mu sync.Mutex
	followed := map[string]int{}
	var gw string
	gwc := make(chan string, 1)
	go func() {
		for l := range nodeLines {
			if m := regexp.MustCompile(`^serving \S+ at (http://\S+)$`).FindStringSubmatch(l); m != nil {
				gwc <- m[1]
			}
			if f := strings.Split(l, "\t"); len(f) == 4 && strings.HasPrefix(f[3], "o-") {
				mu.Lock()
				followed[f[3]]++
				mu.Unlock()
			}
		}
	}()
	select {
	case gw = <-gwc:
	case <-time.After(2 * time.Minute):
		t.Fatal("the node never served")
	}
	peerGot := map[string]int{}
	go func() {
		for l := range peerLines {
			if f := strings.Split(l, "\t"); len(f) == 4 && strings.HasPrefix(f[3], "load-") {
				mu.Lock()
				peerGot[f[3]]++
				mu.Unlock()
			}
		}
	}()

	owner, err := remotelog.DialControl(w)
	if err != nil {
		t.Fatal(err)
	}
	group := sha256.Sum256([]byte("load"))
	ctx := context.Background()
	readerGot := map[string]int{}
	appended := 1
	var fetches, backups, otherN, statuses int
	var maxAppend, maxFetch, maxBackup time.Duration
	var peakRSS int64
	fetch := func() {
		t0 := time.Now()
		out, err := rlog("fetch", "--repo", r, name, "--from", gw)
		maxFetch = max(maxFetch, time.Since(t0))
		if err != nil {
			t.Errorf("fetch: %v", err)
			return
		}
		fetches++
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Split(l, "\t"); len(f) == 4 {
				readerGot[f[3]]++
			}
		}
	}
	// Each load runs on its own schedule, so that a slow one delays no
	// other; appends are due every 60 ms from the start (1,000 a minute),
	// and one that is late is made at once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	every := func(d time.Duration, f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(d)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					f()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(time.Duration(i) * 60 * time.Millisecond))):
			}
			t0 := time.Now()
			if _, err := owner.Append(ctx, group[:], [][]byte{[]byte(fmt.Sprintf("load-%d", appended+1))}); err != nil {
				t.Errorf("append %d: %v", appended+1, err)
				return
			}
			mu.Lock()
			maxAppend = max(maxAppend, time.Since(t0))
			appended++
			mu.Unlock()
		}
	}()
	every(time.Second, func() {
		mu.Lock()
		defer mu.Unlock() // fetches one at a time, the results under mu
		fetch()
	})
	every(time.Minute, func() {
		t0 := time.Now()
		if _, err := rlog("backup", "--repo", w, name, "-o", filepath.Join(work, "b.car")); err != nil {
			t.Errorf("backup: %v", err)
		}
		mu.Lock()
		maxBackup = max(maxBackup, time.Since(t0))
		backups++
		mu.Unlock()
	})
	every(10*time.Second, func() {
		if _, err := rlog("append", "--repo", o, fmt.Sprintf("o-%d", otherN+1)); err != nil {
			t.Errorf("append to the kept log: %v", err)
			return
		}
		if _, err := rlog("publish", "--repo", o); err != nil {
			t.Errorf("publish the kept log: %v", err)
		}
		if _, err := rlog("sync", "status", "--repo", w, "--json"); err != nil {
			t.Errorf("sync status: %v", err)
		}
		mu.Lock()
		otherN++
		statuses++
		mu.Unlock()
	})
	every(time.Second, func() {
		rss := rssOf(node.Process.Pid)
		mu.Lock()
		peakRSS = max(peakRSS, rss)
		mu.Unlock()
	})
	time.Sleep(d) // the load's length
	close(stop)
	wg.Wait()
	must("publish", "--repo", w)
	// Everything arrives: at the reader, the peer, the node's follower.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		mu.Lock()
		fetch()
		done := len(readerGot) == appended && len(peerGot) == appended && len(followed) == otherN+1
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second) // polling a real process's output: no event to wait on
	}
	peakRSS = max(peakRSS, rssOf(node.Process.Pid))
	hwm := hwmOf(node.Process.Pid)
	mu.Lock()
	defer mu.Unlock()
	check := func(what string, got map[string]int, want int, prefix string, from int) {
		for i := from; i < from+want; i++ {
			k := fmt.Sprintf("%s%d", prefix, i)
			if got[k] != 1 {
				t.Errorf("%s: %s delivered %d times", what, k, got[k])
			}
		}
		if len(got) != want {
			t.Errorf("%s: %d distinct messages, want %d", what, len(got), want)
		}
	}
	check("reader", readerGot, appended, "load-", 1)
	check("sync peer", peerGot, appended, "load-", 1)
	check("follower", followed, otherN+1, "o-", 0)
	t.Logf("%s: %d appends (slowest %s), %d fetches (slowest %s), %d backups (slowest %s), %d sync status, %d appends kept and followed",
		d, appended, maxAppend.Round(time.Millisecond), fetches, maxFetch.Round(time.Millisecond), backups, maxBackup.Round(time.Millisecond), statuses, otherN)
	t.Logf("node RSS: peak sampled %d MiB, VmHWM %d MiB", peakRSS>>20, hwm>>20)
	if hwm > 150<<20 {
		t.Errorf("the node's peak resident memory is %d MiB, over 150 MiB", hwm>>20)
	}
}

// rssOf and hwmOf read a process's resident memory now and at its peak.
func rssOf(pid int) int64 { return procStatus(pid, "VmRSS:") }
func hwmOf(pid int) int64 { return procStatus(pid, "VmHWM:") }

func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
