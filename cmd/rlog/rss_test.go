package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
)

// maxrss MB PROG ARGS... runs PROG from the script's PATH as a real
// process, like exec, and fails if its peak resident memory (its own or a
// child's) was over MB megabytes: a bound on memory, not on time. rlog is
// the binary a user runs, built without the race detector, whose shadow
// memory would be measured otherwise.
func maxRSS(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: maxrss MB PROG ARGS...")
	}
	limit, err := strconv.Atoi(args[0])
	ts.Check(err)
	bin, err := plainRlog()
	ts.Check(err)
	path := filepath.Dir(bin) + string(os.PathListSeparator) + ts.Getenv("PATH")
	prog := ""
	for _, dir := range strings.Split(path, string(os.PathListSeparator)) {
		if st, err := os.Stat(filepath.Join(dir, args[1])); err == nil && !st.IsDir() {
			prog = filepath.Join(dir, args[1])
			break
		}
	}
	if prog == "" {
		ts.Fatalf("maxrss: %s not found in the script's PATH", args[1])
	}
	// Through rsswrap, so the peak is the program's own (see rsswrap).
	out := filepath.Join(ts.MkAbs("."), ".maxrss")
	cmd := exec.Command(filepath.Join(filepath.Dir(bin), "rsswrap"), append([]string{prog}, args[2:]...)...)
	cmd.Env = append(bgEnv(ts), "PATH="+path, "RSSWRAP_OUT="+out)
	cmd.Dir = ts.MkAbs(".")
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	err = cmd.Run()
	if neg != (err != nil) {
		ts.Fatalf("%s: %v", args[1], err)
	}
	kb, err := os.ReadFile(out)
	ts.Check(err)
	ts.Check(os.Remove(out))
	rss, err := strconv.ParseInt(string(kb), 10, 64)
	ts.Check(err)
	rss /= 1024 // kB on Linux
	ts.Logf("peak RSS %d MB (limit %d MB)", rss, limit)
	if rss > int64(limit) {
		ts.Fatalf("peak RSS %d MB, over the limit of %d MB", rss, limit)
	}
}

func init() { bgCmds["maxrss"] = maxRSS }

// plainDir holds rlog built without the race detector, once per test run.
var plainDir string

var plainRlog = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(plainDir, "rlog")
	for pkg, out := range map[string]string{".": bin, "./testdata/rsswrap": filepath.Join(plainDir, "rsswrap")} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %v\n%s", pkg, err, b)
		}
	}
	return bin, nil
})
