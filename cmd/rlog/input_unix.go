//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// inputAtHand reports whether a read of f would return input now, without
// waiting: more lines that a fast producer wrote into a pipe while the
// last batch was committed.
func inputAtHand(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		ready = err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
	})
	return ready
}
