package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"rlog/remotelog"
)

// forwarded are the commands that, while a node (rlog run, serve, sync,
// keep) owns the repo, run in that node over its control socket, as `ipfs`
// runs its commands in a running daemon. append and publish have their own
// requests; sync status reads the node's status.
var forwarded = []string{
	"rlog log", "rlog fetch", "rlog follow", "rlog restore", "rlog check", "rlog resolve", "rlog inspect", "rlog block get",
	"rlog pin", "rlog backup", "rlog recover", "rlog repo stat", "rlog repo gc",
	"rlog peer add", "rlog peer rm", "rlog peer ls", "rlog peer pause", "rlog peer resume", "rlog peer interval",
}

// forward runs the command line in the node that owns the repo, when one
// does: handled says whether it did, code is the command's exit code
// there.
func (a *app) forward(c *cobra.Command, args []string) (handled bool, err error) {
	if a.node != nil || !slices.Contains(forwarded, c.CommandPath()) {
		return false, nil
	}
	dir, err := a.repoDir()
	if err != nil || !ownerListens(dir) {
		return false, nil
	}
	owner, err := remotelog.DialControl(dir)
	if err != nil {
		return false, nil
	}
	cwd, _ := os.Getwd()
	req := remotelog.CommandRequest{Args: commandLine(c, args), Dir: cwd, Env: map[string]string{}}
	for _, k := range []string{"HOME", "RLOG_KUBO_API", "RLOG_KUBO_IPFS_PATH", "IPFS_PATH"} {
		if v := a.getenv(k); v != "" {
			req.Env[k] = v
		}
	}
	if c.CommandPath() == "rlog restore" && len(args) == 1 && args[0] == "-" {
		// The node reads no standard input: it reads the backup from a
		// file in the repo, staged here.
		tmp, err := stageStdin(a.stdin, dir)
		if err != nil {
			return true, fmt.Errorf("restore: read standard input: %w", err)
		}
		defer os.Remove(tmp)
		req.Args[len(req.Args)-1] = tmp
	}
	// Ctrl-C or SIGTERM here ends the command there (its request ends):
	// a follower stops cleanly, as it does run here.
	ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := owner.Run(ctx, req, a.stdout, a.stderr)
	if err != nil && ctx.Err() != nil && c.CommandPath() == "rlog follow" {
		return true, nil
	}
	if err != nil {
		return true, err
	}
	if code != exitOK {
		return true, exitStatus(code)
	}
	return true, nil
}

// exitStatus is a command's exit code in the node: already reported there.
type exitStatus int

func (e exitStatus) Error() string { return "" }

// commandLine rebuilds the command line c was given, with what names a
// local file or folder made absolute: the node does not run in this
// directory.
func commandLine(c *cobra.Command, args []string) []string {
	line := strings.Fields(c.CommandPath())[1:]
	c.Flags().Visit(func(f *pflag.Flag) {
		if f.Name == "repo" || f.Name == "lock-timeout" {
			return
		}
		vals := []string{f.Value.String()}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			vals = sv.GetSlice()
		}
		for _, v := range vals {
			if f.Name == "output" || f.Name == "out" || f.Name == "from" {
				v = absLocal(v)
			}
			line = append(line, "--"+f.Name+"="+v)
		}
	})
	for _, arg := range args {
		line = append(line, absLocal(arg))
	}
	return line
}

// absLocal makes p absolute when it is a relative path (it names no URL,
// no kubo: and no name), for a process in another directory.
func absLocal(p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) || strings.Contains(p, ":") {
		return p
	}
	if _, err := os.Stat(p); err != nil && !strings.ContainsRune(p, os.PathSeparator) && !strings.HasSuffix(p, ".car") {
		return p // not a local path: a name, a CID
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return abs
}

// nodeCommands runs command lines sent to the node's control socket, in
// the node: its repo and writer are the node's.
func nodeCommands(ctx context.Context, n *remotelog.Node, req remotelog.CommandRequest, stdout, stderr io.Writer) int {
	getenv := func(k string) string { return req.Env[k] }
	a := &app{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: getenv, node: n}
	return a.execute(ctx, append([]string{"--repo", n.Repo().Dir}, req.Args...))
}

// onNode runs f with the node that owns the repo: the one this command
// runs in, else one started here (its control socket lets other commands
// in through it), which stops when f returns.
func (a *app) onNode(ctx context.Context, f func(*remotelog.Node) error) error {
	if a.node != nil {
		return f(a.node)
	}
	repo, b, release, err := a.openNodeRepo(ctx, a.openRepo)
	if err != nil {
		return err
	}
	defer release()
	node, err := remotelog.StartNode(ctx, repo, remotelog.NodeConfig{Backend: b, Commands: nodeCommands})
	if err != nil {
		return err
	}
	err = f(node)
	if cerr := node.Close(); err == nil {
		err = cerr
	}
	return err
}

// quiet runs f while no append or publish runs in the node this command
// runs in (a command that changes what the node's writer publishes).
func (a *app) quiet(f func() error) error {
	if a.node == nil {
		return f()
	}
	return a.node.WithWriter(func(*remotelog.Writer) error { return f() })
}

// openNodeRepo opens the repo a node is to own, and the backend its writer
// publishes to (nil: the embedded store); release closes both.
func (a *app) openNodeRepo(ctx context.Context, open func(context.Context) (*remotelog.Repo, error)) (_ *remotelog.Repo, _ *remotelog.Backend, release func(), _ error) {
	repo, err := open(ctx)
	var le *remotelog.LockedError
	if errors.As(err, &le) {
		if dir, _ := a.repoDir(); ownerListens(dir) {
			return nil, nil, nil, failf(err, "%v; a repo has one node: stop it and start one that runs both ('rlog run --serve ADDR --sync --keep NAME ...'), or run the other commands in it", le)
		}
	}
	if err != nil {
		return nil, nil, nil, err
	}
	b, closeBackend, err := a.backend(ctx, repo)
	if err != nil {
		repo.Close()
		return nil, nil, nil, err
	}
	return repo, b, func() { closeBackend(); repo.Close() }, nil
}
