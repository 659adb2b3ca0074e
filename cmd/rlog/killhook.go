//go:build rlogkillhook

package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// With the rlogkillhook tag (tests only), RLOG_TEST_KILL=STAGE:SEQ kills
// the process with SIGKILL at that stage of message SEQ (killHook).
func init() {
	stage, seq, ok := strings.Cut(os.Getenv("RLOG_TEST_KILL"), ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return
	}
	killHook = func(at string, s uint64, w io.Writer, line []byte) {
		if at != stage || s != n {
			return
		}
		if at == "halfline" {
			w.Write(line[:len(line)/2])
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
