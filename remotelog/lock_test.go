package remotelog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"rlog/remotelog"
)

func newRepoDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	cfg, _ := remotelog.DefaultConfig("paged")
	if _, err := remotelog.Init(dir, cfg); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOpenWaitsForTheLock: an open that finds the repo held waits, and
// gets the repo once its holder closes it, then names itself in the lock.
func TestOpenWaitsForTheLock(t *testing.T) {
	dir := newRepoDir(t)
	ctx := context.Background()
	holder, err := remotelog.OpenWith(ctx, dir, remotelog.OpenOptions{Command: "rlog holder"})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan remotelog.LockHolder, 1)
	var once sync.Once
	type result struct {
		repo *remotelog.Repo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		r, err := remotelog.OpenWith(ctx, dir, remotelog.OpenOptions{
			LockTimeout: time.Hour, // the test ends it, not the clock
			Command:     "rlog contender",
			Waiting: func(h remotelog.LockHolder, _ time.Duration) bool {
				once.Do(func() { waiting <- h })
				return true
			},
		})
		done <- result{r, err}
	}()
	select {
	case h := <-waiting:
		if h.PID != os.Getpid() || h.Command != "rlog holder" {
			t.Fatalf("the contender sees the holder as %+v", h)
		}
	case res := <-done:
		t.Fatalf("the contender did not wait: %v", res.err)
	case <-time.After(patience):
		t.Fatal("the contender neither waited nor opened")
	}
	if err := holder.Close(); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(patience):
		t.Fatal("the contender did not get the released lock")
	}
	if res.err != nil {
		t.Fatalf("the contender failed: %v", res.err)
	}
	defer res.repo.Close()
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	var h remotelog.LockHolder
	if err := json.Unmarshal(b, &h); err != nil || h.PID != os.Getpid() || h.Command != "rlog contender" {
		t.Fatalf("lock file %q (%v), want the contender in it", b, err)
	}
}

// TestOpenGivesUpNamingTheHolder: past its deadline, or at once without
// one, an open fails with ErrLocked and says who holds the repo.
func TestOpenGivesUpNamingTheHolder(t *testing.T) {
	dir := newRepoDir(t)
	ctx := context.Background()
	holder, err := remotelog.OpenWith(ctx, dir, remotelog.OpenOptions{Command: "rlog serve"})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	want := fmt.Sprintf("held by pid %d (rlog serve) since ", os.Getpid())
	check := func(err error, waited bool) {
		t.Helper()
		var le *remotelog.LockedError
		if !errors.Is(err, remotelog.ErrLocked) || !errors.As(err, &le) {
			t.Fatalf("got %v, want a LockedError", err)
		}
		if le.Holder.PID != os.Getpid() || le.Holder.Command != "rlog serve" || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name the holder (%+v)", err, le.Holder)
		}
		if waited != strings.Contains(err.Error(), "gave up after") {
			t.Fatalf("error %q: waited %v", err, waited)
		}
	}
	_, err = remotelog.OpenWith(ctx, dir, remotelog.OpenOptions{LockTimeout: 20 * time.Millisecond})
	check(err, true)
	_, err = remotelog.Open(dir)
	check(err, false)
	calls := 0
	_, err = remotelog.OpenWith(ctx, dir, remotelog.OpenOptions{
		LockTimeout: time.Hour,
		Waiting:     func(remotelog.LockHolder, time.Duration) bool { calls++; return false },
	})
	check(err, false)
	if calls != 1 {
		t.Fatalf("Waiting called %d times, want 1", calls)
	}
}

// TestOpenWaitEndsWithContext: a waiting open ends when its context does.
func TestOpenWaitEndsWithContext(t *testing.T) {
	dir := newRepoDir(t)
	holder, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	ctx, cancel := context.WithCancel(context.Background())
	_, err = remotelog.OpenWith(ctx, dir, remotelog.OpenOptions{
		LockTimeout: time.Hour,
		Waiting:     func(remotelog.LockHolder, time.Duration) bool { cancel(); return true },
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestCloseEmptiesTheLock: a closed repo leaves no holder behind.
func TestCloseEmptiesTheLock(t *testing.T) {
	dir := newRepoDir(t)
	r, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "lock")); err != nil || len(b) != 0 {
		t.Fatalf("lock file %q after close (%v)", b, err)
	}
}
