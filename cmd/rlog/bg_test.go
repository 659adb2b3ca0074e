package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
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
//	bg-expect NAME REGEXP    wait (at most 30 s) for a line of its stdout to match
//	bg-stop NAME             interrupt it, wait, and make its output the
//	                         script's stdout/stderr for the usual assertions
type bgProc struct {
	cmd    *exec.Cmd
	lines  chan string
	mu     sync.Mutex
	out    strings.Builder
	stderr strings.Builder
}

var bgProcs sync.Map // script-scoped names are made unique by the script's workdir

func bgKey(ts *testscript.TestScript, name string) string { return ts.Getenv("WORK") + "\x00" + name }

func bgEnv(ts *testscript.TestScript) []string {
	env := os.Environ()
	for _, k := range []string{"PATH", "HOME", "WORK", "TMPDIR", "RLOG_PATH", "RLOG_KUBO_API", "IPFS_PATH", "PORT", "PORT2"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

var bgCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"bg": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: bg NAME PROG ARGS...")
		}
		prog, err := exec.LookPath(args[1])
		if p := ts.Getenv("PATH"); err != nil || p != "" {
			for _, dir := range strings.Split(p, string(os.PathListSeparator)) {
				if st, e := os.Stat(dir + "/" + args[1]); e == nil && !st.IsDir() {
					prog, err = dir+"/"+args[1], nil
					break
				}
			}
		}
		ts.Check(err)
		p := &bgProc{cmd: exec.Command(prog, args[2:]...), lines: make(chan string, 1024)}
		p.cmd.Env = bgEnv(ts)
		p.cmd.Dir = ts.Getenv("WORK")
		stdout, err := p.cmd.StdoutPipe()
		ts.Check(err)
		p.cmd.Stderr = &lockedWriter{mu: &p.mu, b: &p.stderr}
		ts.Check(p.cmd.Start())
		go func() {
			defer close(p.lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				p.mu.Lock()
				p.out.WriteString(sc.Text() + "\n")
				p.mu.Unlock()
				p.lines <- sc.Text()
			}
		}()
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
		deadline := time.After(30 * time.Second)
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
			case <-deadline:
				p.mu.Lock()
				defer p.mu.Unlock()
				ts.Fatalf("%s printed no line matching %q in 30 s; stdout:\n%s\nstderr:\n%s", args[0], args[1], p.out.String(), p.stderr.String())
			}
		}
	},
	"bg-stop": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: bg-stop NAME")
		}
		v, ok := bgProcs.LoadAndDelete(bgKey(ts, args[0]))
		if !ok {
			ts.Fatalf("no background process %s", args[0])
		}
		p := v.(*bgProc)
		p.cmd.Process.Signal(syscall.SIGINT)
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
