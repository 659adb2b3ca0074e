package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for long-running rlog processes (serve, follow), run as
// real processes:
//
//	bg NAME PROG ARGS...     start PROG in the background
//	bg-expect NAME REGEXP    wait (at most bgPatience) for a line of its output
//	                         (either stream) to match; lines it passes over stay
//	                         for the next bg-expect or bg-count
//	bg-stop NAME [TERM|KILL] interrupt it (or send SIGTERM, SIGKILL), wait, and make its
//	                         output the script's stdout/stderr for the usual
//	                         assertions
type bgProc struct {
	cmd    *exec.Cmd
	lines  chan string
	mu     sync.Mutex
	out    strings.Builder
	stderr strings.Builder
	// pending are lines read that no bg-expect or bg-count has taken: its
	// stdout and stderr are read apart, so a line may come before one
	// printed earlier on the other stream.
	pending []string
}

// takePending removes and returns the first pending line matching re.
func (p *bgProc) takePending(re *regexp.Regexp) (string, bool) {
	for i, l := range p.pending {
		if re.MatchString(l) {
			p.pending = slices.Delete(p.pending, i, i+1)
			return l, true
		}
	}
	return "", false
}

// bgPatience is how long bg-expect and bg-count wait for their lines:
// generous, for a busy 2-core machine under -race; they return as soon as
// the lines come.
const bgPatience = 2 * time.Minute

var bgProcs sync.Map // script-scoped names are made unique by the script's workdir

func bgKey(ts *testscript.TestScript, name string) string { return ts.Getenv("WORK") + "\x00" + name }

func bgEnv(ts *testscript.TestScript) []string {
	env := os.Environ()
	for _, k := range []string{"PATH", "HOME", "WORK", "TMPDIR", "RLOG_PATH", "RLOG_KUBO_API", "IPFS_PATH", "PORT", "PORT2",
		"BUCKET", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

var bgCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"bg": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: bg NAME PROG ARGS...")
		}
		// The script's PATH, where testscript put its rlog.
		prog := ""
		for _, dir := range strings.Split(ts.Getenv("PATH"), string(os.PathListSeparator)) {
			if st, err := os.Stat(filepath.Join(dir, args[1])); err == nil && !st.IsDir() {
				prog = filepath.Join(dir, args[1])
				break
			}
		}
		if prog == "" {
			ts.Fatalf("bg: %s not found in the script's PATH", args[1])
		}
		p := &bgProc{cmd: exec.Command(prog, args[2:]...), lines: make(chan string, 1024)}
		p.cmd.Env = bgEnv(ts)
		p.cmd.Dir = ts.Getenv("WORK")
		stdout, err := p.cmd.StdoutPipe()
		ts.Check(err)
		stderr, err := p.cmd.StderrPipe()
		ts.Check(err)
		ts.Check(p.cmd.Start())
		// Lines of both streams reach bg-expect; each is kept apart for bg-stop.
		var wg sync.WaitGroup
		scan := func(r io.Reader, into *strings.Builder) {
			defer wg.Done()
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				p.mu.Lock()
				into.WriteString(sc.Text() + "\n")
				p.mu.Unlock()
				p.lines <- sc.Text()
			}
		}
		wg.Add(2)
		go scan(stdout, &p.out)
		go scan(stderr, &p.stderr)
		go func() { wg.Wait(); close(p.lines) }()
		bgProcs.Store(bgKey(ts, args[0]), p)
		ts.Defer(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	},
	"bg-expect": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: bg-expect NAME REGEXP")
		}
		v, ok := bgProcs.Load(bgKey(ts, args[0]))
		if !ok {
			ts.Fatalf("no background process %s", args[0])
		}
		p := v.(*bgProc)
		re := regexp.MustCompile(args[1])
		if _, ok := p.takePending(re); ok {
			return
		}
		deadline := time.After(bgPatience)
		for {
			select {
			case line, open := <-p.lines:
				if !open {
					p.mu.Lock()
					defer p.mu.Unlock()
					ts.Fatalf("%s exited before printing %q; stderr:\n%s", args[0], args[1], p.stderr.String())
				}
				if re.MatchString(line) {
					return
				}
				p.pending = append(p.pending, line)
			case <-deadline:
				p.mu.Lock()
				defer p.mu.Unlock()
				ts.Fatalf("%s printed no line matching %q in %s; stdout:\n%s\nstderr:\n%s", args[0], args[1], bgPatience, p.out.String(), p.stderr.String())
			}
		}
	},
	"bg-count": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 3 {
			ts.Fatalf("usage: bg-count NAME REGEXP N")
		}
		v, ok := bgProcs.Load(bgKey(ts, args[0]))
		if !ok {
			ts.Fatalf("no background process %s", args[0])
		}
		p := v.(*bgProc)
		re := regexp.MustCompile(args[1])
		want, err := strconv.Atoi(args[2])
		ts.Check(err)
		seen := map[string]bool{}
		for len(seen) < want {
			line, ok := p.takePending(re)
			if !ok {
				break
			}
			if seen[line] {
				ts.Fatalf("%s printed %q twice", args[0], line)
			}
			seen[line] = true
		}
		deadline := time.After(bgPatience)
		for len(seen) < want {
			select {
			case line, open := <-p.lines:
				if !open {
					ts.Fatalf("%s exited after %d of %d lines matching %q", args[0], len(seen), want, args[1])
				}
				if !re.MatchString(line) {
					p.pending = append(p.pending, line)
					continue
				}
				if seen[line] {
					ts.Fatalf("%s printed %q twice", args[0], line)
				}
				seen[line] = true
			case <-deadline:
				ts.Fatalf("%s printed %d of %d lines matching %q in %s", args[0], len(seen), want, args[1], bgPatience)
			}
		}
	},
	"count": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: count REGEXP N (in the last command's stdout)")
		}
		re := regexp.MustCompile(args[0])
		want, err := strconv.Atoi(args[1])
		ts.Check(err)
		n := 0
		for _, l := range strings.Split(ts.ReadFile("stdout"), "\n") {
			if re.MatchString(l) {
				n++
			}
		}
		if n != want {
			ts.Fatalf("%d lines match %q, want %d", n, args[0], want)
		}
	},
	"bg-stop": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 1 || len(args) > 2 || (len(args) == 2 && args[1] != "TERM" && args[1] != "KILL") {
			ts.Fatalf("usage: bg-stop NAME [TERM|KILL]")
		}
		v, ok := bgProcs.LoadAndDelete(bgKey(ts, args[0]))
		if !ok {
			ts.Fatalf("no background process %s", args[0])
		}
		p := v.(*bgProc)
		sig := syscall.SIGINT
		if len(args) == 2 {
			sig = map[string]syscall.Signal{"TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL}[args[1]]
		}
		p.cmd.Process.Signal(sig)
		for range p.lines { // drain until it exits
		}
		p.cmd.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		ts.Stdout().Write([]byte(p.out.String()))
		ts.Stderr().Write([]byte(p.stderr.String()))
	},
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
