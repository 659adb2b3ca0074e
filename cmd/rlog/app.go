package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"rlog/pager"
	"rlog/remotelog"
)

// app holds what every command shares: its streams and environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	repoFlag       string
	apiFlag        string
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

func (a *app) openRepo() (*remotelog.Repo, error) {
	dir, err := a.repoDir()
	if err != nil {
		return nil, err
	}
	return remotelog.Open(dir)
}

// openOrInitRepo opens the repo, creating it first (default preset, a new
// key) when there is none: restore and keep fill a new folder.
func (a *app) openOrInitRepo() (*remotelog.Repo, error) {
	repo, err := a.openRepo()
	if !errors.Is(err, remotelog.ErrNoRepo) {
		return repo, err
	}
	dir, _ := a.repoDir()
	cfg, err := remotelog.DefaultConfig(pager.DefaultPreset)
	if err != nil {
		return nil, err
	}
	if _, err := remotelog.Init(dir, cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(a.stderr, "created repo %s\n", dir)
	return a.openRepo()
}

func parseName(s string) (ipns.Name, error) {
	n, err := ipns.NameFromString(strings.TrimPrefix(s, "/ipns/"))
	if err != nil {
		return ipns.Name{}, usagef("%q is not a log name (an IPNS name such as k51...): %v", s, err)
	}
	return n, nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
