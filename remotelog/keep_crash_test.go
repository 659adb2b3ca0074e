package remotelog_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

const (
	keepChildEnv  = "RLOG_KEEP_CHILD"
	keepSourceEnv = "RLOG_KEEP_SOURCE"
	keepNameEnv   = "RLOG_KEEP_NAME"
)

// keepChild keeps a log, as `rlog keep` does, in the repo dir from the
// gateway in $RLOG_KEEP_SOURCE until SIGTERM, printing "kept N" for each
// record sequence N it stores and "caught up" after each catch-up.
func keepChild(dir string) {
	fail := func(err error) { fmt.Println("error", err); os.Exit(1) }
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	repo, err := remotelog.Open(dir)
	if err != nil {
		fail(err)
	}
	defer repo.Close()
	name, err := remotelog.ParseName(os.Getenv(keepNameEnv))
	if err != nil {
		fail(err)
	}
	cursors := remotelog.KeepCursors(dir)
	cur, err := cursors.Get(name)
	if err != nil {
		fail(err)
	}
	src := remotelog.GatewaySourceWith(os.Getenv(keepSourceEnv), &http.Client{})
	fmt.Println("ready")
	_, err = remotelog.Keep(ctx, src, name, cur, remotelog.KeepTarget{Store: repo.Store(), Names: repo.Names()}, remotelog.KeepOptions{
		Kept: func(rec *namesys.Record) { fmt.Println("kept", rec.Sequence) },
		Follow: remotelog.FollowOptions{
			Save:        func(c remotelog.Cursor) error { return cursors.Save(name, c) },
			MinInterval: 20 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
			After: func(d time.Duration) <-chan time.Time {
				if d < time.Hour { // not the republishing's wait
					fmt.Println("caught up") // Follow waits after each catch-up
				}
				return time.After(d)
			},
		},
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		fail(err)
	}
}

func keepCrashBody(i int) []byte {
	if i%7 == 3 { // by pointer: over the inline limit
		return append([]byte(fmt.Sprintf("m%d ", i)), bytes.Repeat([]byte{'x'}, 5<<10)...)
	}
	return []byte(fmt.Sprintf("m%d", i))
}

// TestKeeperInvariantUnderKills: a keeper process catching up a log of
// thousands of messages from a gateway is stopped with SIGTERM or SIGKILL
// at random block fetches (seeded) and restarted, while the log grows.
// After every stop, a fresh reader of the keeper's store and record gets
// the whole log the record names, or no record yet; never a missing block.
func TestKeeperInvariantUnderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 16))

	pol, _ := pager.Preset("paged")
	pol.PageEntries, pol.Window = 16, 4
	w := newWorld(t, pol)
	w.clock.t = time.Now()
	appended := 0
	grow := func(n int) uint64 {
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = keepCrashBody(appended + i)
		}
		if _, err := w.w.Append(context.Background(), group, bodies); err != nil {
			t.Fatal(err)
		}
		appended += n
		return w.publish(t).RecordSeq
	}

	// The gateway signals the keeper at its killAt-th block request.
	var child atomic.Pointer[os.Process]
	var served, killAt atomic.Int64
	var sig atomic.Value
	gw := &gateway{w: w}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/ipfs/") && served.Add(1) == killAt.Load() {
			if p := child.Load(); p != nil {
				p.Signal(sig.Load().(syscall.Signal))
			}
		}
		gw.ServeHTTP(rw, r)
	}))
	defer srv.Close()

	dir := t.TempDir()
	if _, err := remotelog.Init(dir, mustConfig(t)); err != nil {
		t.Fatal(err)
	}
	recSeq := grow(2000)
	const kills = 8
	for k := 0; k <= kills; k++ {
		if k > 0 && k%2 == 0 {
			recSeq = grow(300 + rng.IntN(300))
		}
		s := syscall.SIGKILL
		if rng.IntN(2) == 0 {
			s = syscall.SIGTERM
		}
		sig.Store(s)
		if k == kills {
			killAt.Store(0) // the last run catches up and is stopped after
		} else {
			killAt.Store(served.Load() + 1 + int64(rng.IntN(400)))
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), keepChildEnv+"="+dir, keepSourceEnv+"="+srv.URL, keepNameEnv+"="+w.w.Name().String())
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		child.Store(cmd.Process)
		// Until it exits (signalled by the gateway) or has caught up (then
		// it is signalled here).
		caught := false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			switch f := strings.Fields(sc.Text()); {
			case f[0] == "caught" && !caught:
				caught = true
				cmd.Process.Signal(s)
			case f[0] == "error":
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("run %d: the keeper failed: %s\n%s", k, sc.Text(), stderr.String())
			}
		}
		child.Store(nil)
		err = cmd.Wait()
		if caught {
			t.Logf("run %d: caught up to record %d, then %v (%v)", k, recSeq, s, err)
		} else {
			t.Logf("run %d: %v at block request %d (%v)", k, s, killAt.Load(), err)
		}
		if k == kills && !caught {
			t.Fatalf("the last run did not catch up: %v\n%s", err, stderr.String())
		}
		checkKept(t, dir, w, k == kills)
	}
}

// checkKept reads the keeper's repo as a fresh reader: the whole log its
// record names, or no record; with whole set, the writer's whole log.
func checkKept(t *testing.T, dir string, w *world, whole bool) {
	t.Helper()
	repo, err := remotelog.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("the keeper's repo does not open: %v", err)
	}
	defer repo.Close()
	i := 0
	_, st, err := remotelog.CatchUp(context.Background(), repo, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}, func(m remotelog.Message) error {
		if m.Seq != uint64(i+1) || !bytes.Equal(m.Body, keepCrashBody(i)) {
			return fmt.Errorf("message %d: seq %d %.20q", i+1, m.Seq, m.Body)
		}
		i++
		return nil
	})
	switch {
	case errors.Is(err, remotelog.ErrNoLog) && !whole:
	case err != nil:
		t.Fatalf("a reader of the keeper: %v", err)
	case uint64(i) != st.LogLength || (whole && uint64(i) != w.w.Len()):
		t.Fatalf("a reader of the keeper read %d messages of a log of %d (the writer's has %d)", i, st.LogLength, w.w.Len())
	}
}
