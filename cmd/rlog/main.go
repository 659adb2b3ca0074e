package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

// Exit codes, decided here and nowhere else.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitConflict = 3 // fork, rollback, local log behind or diverged
	exitInvalid  = 4 // data or record that failed verification
	exitNotFound = 5 // no repo, no published log, no block, no file named on the command line
	exitPrivate  = 6 // a private log's body and no read key for it
)

// memoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT sets
// another: a phone's OS kills an app whose memory grows, so the collector
// works harder as the heap nears it rather than let garbage double it. The
// runtime's own code and the binary's mapped text come on top (about 30 MiB
// of resident memory).
const memoryLimit = 28 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	return a.execute(ctx, args)
}

// execute runs one command line as a.
func (a *app) execute(ctx context.Context, args []string) int {
	stdin, stdout, stderr := a.stdin, a.stdout, a.stderr
	cmd := a.root()
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st) // a node ran the command and said why it failed
	}
	if a.debug {
		fmt.Fprintf(stderr, "rlog: %s\n", debugText(err))
	} else {
		fmt.Fprintf(stderr, "rlog: %s\n", plain(err.Error()))
	}
	return exitCode(err)
}

func exitCode(err error) int {
	var u usageError
	switch {
	case errors.As(err, &u):
		return exitUsage
	case errors.Is(err, remotelog.ErrFork), errors.Is(err, remotelog.ErrRollback),
		errors.Is(err, remotelog.ErrBehind), errors.Is(err, remotelog.ErrDiverged):
		return exitConflict
	case errors.Is(err, remotelog.ErrPrivate):
		return exitPrivate
	case errors.Is(err, remotelog.ErrInvalidLog), errors.Is(err, namesys.ErrInvalid), errors.Is(err, remotelog.ErrDecrypt),
		errors.Is(err, cas.ErrHashMismatch), errors.Is(err, cas.ErrTruncated), errors.Is(err, cas.ErrNotCAR), errors.Is(err, pager.ErrMalformed),
		errors.Is(err, pager.ErrVersion), errors.Is(err, pager.ErrTooLarge):
		return exitInvalid
	case errors.Is(err, remotelog.ErrNoRepo), errors.Is(err, remotelog.ErrNoLog),
		errors.Is(err, namesys.ErrNotFound), errors.Is(err, cas.ErrNotFound),
		errors.Is(err, errNoFile):
		return exitNotFound
	}
	return exitError
}
