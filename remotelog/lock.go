package remotelog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultLockTimeout is how long the rlog command waits for a repo that
// another process holds.
const DefaultLockTimeout = 30 * time.Second

// OpenOptions tune OpenWith.
type OpenOptions struct {
	// LockTimeout is how long to wait while another process holds the repo
	// lock; zero fails at once.
	LockTimeout time.Duration
	// Command says what this process is ("rlog append"), written into the
	// lock for a waiting process to report; default: the program's name.
	Command string
	// Waiting, when set, is called each time the lock is found held, with
	// its holder (zero when it has not said) and how long this process has
	// waited; returning false stops waiting: OpenWith fails with ErrLocked.
	Waiting func(h LockHolder, waited time.Duration) bool
}

// LockHolder is the process holding a repo lock, as it wrote itself into
// the lock file.
type LockHolder struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// String is "pid 4242 (rlog serve) since 2026-12-01T10:43:40Z", or "an
// unknown process" for the zero LockHolder.
func (h LockHolder) String() string {
	if h.PID == 0 {
		return "an unknown process"
	}
	return fmt.Sprintf("pid %d (%s) since %s", h.PID, h.Command, h.Since.UTC().Format(time.RFC3339))
}

// LockedError is why an open did not get the repo lock: "repo is in use by
// another rlog process: held by ...". It matches ErrLocked.
type LockedError struct {
	Dir    string
	Holder LockHolder    // zero when the holder has not said who it is
	Waited time.Duration // how long the open waited before its deadline passed; zero: it did not wait
}

func (e *LockedError) Error() string {
	s := fmt.Sprintf("%v: held by %s", ErrLocked, e.Holder)
	if e.Waited > 0 {
		s += fmt.Sprintf("; gave up after %s", e.Waited.Round(time.Millisecond))
	}
	return s
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// lockPollMax bounds the wait between two tries for a held lock (flock
// has no timeout, so a waiter polls, backing off from a millisecond).
const lockPollMax = 50 * time.Millisecond

// lockDir takes the repo lock, waiting as opts say, and writes this
// process into it.
func lockDir(ctx context.Context, dir string, opts OpenOptions) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("remotelog: lock %s: %w", dir, err)
	}
	start := time.Now()
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("remotelog: lock %s: %w", dir, err)
		}
		h := readHolder(f)
		waited := time.Since(start)
		if waited >= opts.LockTimeout {
			f.Close()
			le := &LockedError{Dir: dir, Holder: h}
			if opts.LockTimeout > 0 {
				le.Waited = waited
			}
			return nil, fmt.Errorf("remotelog: lock %s: %w", dir, le)
		}
		if opts.Waiting != nil && !opts.Waiting(h, waited) {
			f.Close()
			return nil, fmt.Errorf("remotelog: lock %s: %w", dir, &LockedError{Dir: dir, Holder: h})
		}
		t := time.NewTimer(min(delay, opts.LockTimeout-waited))
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("remotelog: lock %s: %w", dir, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, lockPollMax)
	}
	cmd := opts.Command
	if cmd == "" {
		cmd = filepath.Base(os.Args[0])
	}
	b, _ := json.Marshal(LockHolder{PID: os.Getpid(), Command: cmd, Since: time.Now().UTC().Truncate(time.Second)})
	// One write into the lock file, which its last holder left empty (or,
	// after a crash, stale: cut to length).
	if _, err := f.WriteAt(append(b, '\n'), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("remotelog: lock %s: %w", dir, err)
	}
	if err := f.Truncate(int64(len(b) + 1)); err != nil {
		f.Close()
		return nil, fmt.Errorf("remotelog: lock %s: %w", dir, err)
	}
	return f, nil
}

// readHolder reads who holds the lock; the zero LockHolder when it has
// not written itself yet.
func readHolder(f *os.File) LockHolder {
	var h LockHolder
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	if json.Unmarshal(b[:n], &h) != nil {
		return LockHolder{}
	}
	return h
}

// unlock empties the lock file, so that no stale holder is read, and
// releases the lock.
func unlock(f *os.File) error {
	terr := f.Truncate(0)
	return errors.Join(terr, f.Close())
}
