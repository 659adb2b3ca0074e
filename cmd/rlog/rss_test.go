package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"
)

// maxrss MB PROG ARGS... runs PROG from the script's PATH as a real
// process, like exec, and fails if its peak resident memory was over MB
// megabytes: a bound on memory, not on time.
func maxRSS(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: maxrss MB PROG ARGS...")
	}
	limit, err := strconv.Atoi(args[0])
	ts.Check(err)
	prog := ""
	for _, dir := range strings.Split(ts.Getenv("PATH"), string(os.PathListSeparator)) {
		if st, err := os.Stat(filepath.Join(dir, args[1])); err == nil && !st.IsDir() {
			prog = filepath.Join(dir, args[1])
			break
		}
	}
	if prog == "" {
		ts.Fatalf("maxrss: %s not found in the script's PATH", args[1])
	}
	cmd := exec.Command(prog, args[2:]...)
	cmd.Env = bgEnv(ts)
	cmd.Dir = ts.MkAbs(".")
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	err = cmd.Run()
	if neg != (err != nil) {
		ts.Fatalf("%s: %v", args[1], err)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024 // kB on Linux
	ts.Logf("peak RSS %d MB (limit %d MB)", rss, limit)
	if rss > int64(limit) {
		ts.Fatalf("peak RSS %d MB, over the limit of %d MB", rss, limit)
	}
}

func init() { bgCmds["maxrss"] = maxRSS }
