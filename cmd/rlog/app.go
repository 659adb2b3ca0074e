package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"rlog/remotelog"
)

// app holds what every command shares: its streams and environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	repoFlag       string
	apiFlag        string
	lockTimeout    time.Duration
	command        string // the command running, "rlog append"
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "rlog",
		Short: "Publish a message log to IPFS and read others' logs while they are offline",
		Long: `rlog keeps a durable local log of MVDS messages, publishes it as content-addressed
pages with a signed IPNS name, and reads other logs by name, fetching only what is new.

A repo (--repo, else $RLOG_PATH, else ~/.rlog) holds your key, your log, an embedded
block store and how far you have read other logs. No daemon is needed.

  rlog init                      create a repo and print your log's name
  rlog append "hello"            append a message (durable when it returns)
  rlog publish                   make appended messages readable under your name
  rlog fetch NAME --from DIR     print what is new in log NAME, remember where you stopped
  rlog demo                      see the whole job run in a temporary directory`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.repoFlag, "repo", "", "repo directory (default $RLOG_PATH, else ~/.rlog)")
	root.PersistentFlags().DurationVar(&a.lockTimeout, "lock-timeout", remotelog.DefaultLockTimeout, "how long to wait while another rlog process holds the repo (0: fail at once)")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { a.command = cmd.CommandPath() }
	root.PersistentFlags().StringVar(&a.apiFlag, "api", "", "Kubo RPC API multiaddr (e.g. /ip4/127.0.0.1/tcp/5001): publish to and read through this daemon")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.initCmd(), a.appendCmd(), a.publishCmd(), a.fetchCmd(), a.logCmd(),
		a.resolveCmd(), a.blockCmd(), a.inspectCmd(), a.demoCmd(), a.recoverCmd(), a.benchCmd(), a.pinCmd(), a.backupCmd(), a.restoreCmd(), a.checkCmd(), a.serveCmd(), a.followCmd(), a.keepCmd(), a.mvdsCmd(), a.syncCmd(), a.idCmd())
	return root
}

// repoDir is where the repo is: --repo, $RLOG_PATH, ~/.rlog.
func (a *app) repoDir() (string, error) {
	if a.repoFlag != "" {
		return a.repoFlag, nil
	}
	if p := a.getenv("RLOG_PATH"); p != "" {
		return p, nil
	}
	home := a.getenv("HOME")
	if home == "" {
		return "", usagef("no repo: give --repo or set $RLOG_PATH (and $HOME is not set)")
	}
	return filepath.Join(home, ".rlog"), nil
}

// openRepo opens the repo for writing. While another process holds it,
// it waits up to --lock-timeout, saying so after a second; but when that
// process owns the repo and takes requests (rlog serve, rlog sync), it
// fails at once with ErrLocked, for the caller to go through the owner.
func (a *app) openRepo(ctx context.Context) (*remotelog.Repo, error) {
	dir, err := a.repoDir()
	if err != nil {
		return nil, err
	}
	said := false
	repo, err := remotelog.OpenWith(ctx, dir, remotelog.OpenOptions{
		LockTimeout: a.lockTimeout,
		Command:     a.command,
		Waiting: func(h remotelog.LockHolder, waited time.Duration) bool {
			if ownerListens(dir) {
				return false
			}
			if !said && waited >= time.Second {
				fmt.Fprintf(a.stderr, "waiting up to %s for the repo, held by %s\n", a.lockTimeout, h)
				said = true
			}
			return true
		},
	})
	var le *remotelog.LockedError
	if errors.As(err, &le) && le.Waited > 0 {
		return nil, fmt.Errorf("%w (--lock-timeout waits longer)", err)
	}
	return repo, err
}

func parseName(s string) (ipns.Name, error) {
	n, err := ipns.NameFromString(strings.TrimPrefix(s, "/ipns/"))
	if err != nil {
		return ipns.Name{}, usagef("%q is not a log name (an IPNS name such as k51...): %v", s, err)
	}
	return n, nil
}

// msgJSON is one message as `fetch --json` and `log --json` print it.
type msgJSON struct {
	Seq       uint64 `json:"seq"`
	ID        string `json:"id"`
	Group     string `json:"group"`
	Timestamp int64  `json:"timestamp"`
	Body      []byte `json:"body"`
	Text      string `json:"text,omitempty"`
}

func printMessage(w io.Writer, asJSON bool, seq uint64, id []byte, group []byte, ts int64, body []byte) error {
	if asJSON {
		m := msgJSON{Seq: seq, ID: hex.EncodeToString(id), Group: hex.EncodeToString(group), Timestamp: ts, Body: body}
		if utf8.Valid(body) {
			m.Text = string(body)
		}
		b, _ := json.Marshal(m)
		_, err := fmt.Fprintf(w, "%s\n", b)
		return err
	}
	text := string(body)
	if !utf8.Valid(body) {
		text = "base64:" + base64.StdEncoding.EncodeToString(body)
	}
	_, err := fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", seq, hex.EncodeToString(id)[:16], time.Unix(ts, 0).UTC().Format(time.RFC3339), text)
	return err
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
