package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
	debug          bool
	lockTimeout    time.Duration
	retries        int    // --retries: attempts per request, 0 for the default
	command        string // the command running, "rlog append"
	// node, when set, is the node this command runs in (sent over its
	// control socket): the repo is the node's.
	node *remotelog.Node
}

// helpWidth is how wide --help's lines are at most: its text, examples
// and flags.
const helpWidth = 88

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
  rlog fetch NAME --from DIR     print what is new in log NAME since the last fetch
  rlog demo                      see the whole job run in a temporary directory

Exit codes: 0 ok, 1 error, 2 bad command line, 3 conflict (fork, rollback, local log
behind or diverged), 4 data that failed verification, 5 not found, 6 a private log
without its read key. Errors say in one line what failed; --debug adds the whole chain
of causes. docs/CLI.md has the JSON that --json prints.`,
		Example: `  rlog init && rlog append "hello" && rlog publish
  rlog init --repo ~/reader
  rlog fetch --repo ~/reader k51qzi5uqu5d... --from ~/.rlog
  rlog id`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Flags' descriptions wrap under their column, as wide as the help text.
	root.SetUsageTemplate(strings.ReplaceAll(root.UsageTemplate(), ".FlagUsages |", fmt.Sprintf(".FlagUsagesWrapped %d |", helpWidth)))
	root.PersistentFlags().StringVar(&a.repoFlag, "repo", "", "repo directory (default $RLOG_PATH, else ~/.rlog)")
	root.PersistentFlags().BoolVar(&a.debug, "debug", false, "on failure, print the whole chain of causes, not only what failed")
	root.PersistentFlags().DurationVar(&a.lockTimeout, "lock-timeout", remotelog.DefaultLockTimeout, "how long to wait while another rlog process holds the repo (0: fail at once)")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { a.command = cmd.CommandPath() }
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		msg := fmt.Sprintf("%s: %v", strings.TrimPrefix(c.CommandPath(), "rlog "), err)
		if c == c.Root() {
			msg = err.Error()
		}
		if s := flagSuggestion(c, err); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		return usageFail(err, "%s; run '%s --help'", msg, c.CommandPath())
	})
	root.AddCommand(a.initCmd(), a.appendCmd(), a.publishCmd(), a.fetchCmd(), a.logCmd(),
		a.resolveCmd(), a.blockCmd(), a.inspectCmd(), a.demoCmd(), a.recoverCmd(), a.benchCmd(), a.pinCmd(), a.backupCmd(), a.restoreCmd(), a.checkCmd(), a.serveCmd(), a.followCmd(), a.keepCmd(), a.mvdsCmd(), a.syncCmd(), a.runCmd(), a.statusCmd(), a.peerCmd(), a.groupCmd(), a.idCmd(), a.versionCmd(), a.shareCmd(), a.rekeyCmd(), a.repoCmd())
	forEachCommand(root, func(c *cobra.Command) {
		// A mistyped command is suggested its nearest names, as cobra
		// would by default (its SuggestionsFor alone only matches prefixes
		// until this is set).
		c.SuggestionsMinimumDistance = 2
		// A wrong command line exits 2, whatever cobra found wrong with it.
		if c.HasSubCommands() && c.RunE == nil {
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
			c.Args = func(c *cobra.Command, args []string) error {
				if len(args) == 0 {
					return nil
				}
				msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
				if s := c.SuggestionsFor(args[0]); len(s) > 0 {
					msg += " (did you mean " + oneOf(s) + "?)"
				}
				return usagef("%s; run '%s --help'", msg, c.CommandPath())
			}
		}
		if check := c.Args; check != nil {
			c.Args = func(c *cobra.Command, args []string) error {
				if err := check(c, args); err != nil {
					if explained(err) {
						return err
					}
					return usageFail(err, "%s: %v; run '%s --help'", strings.TrimPrefix(c.CommandPath(), "rlog "), err, c.CommandPath())
				}
				return nil
			}
		}
		// What failed, said for the user, when the command did not say it.
		if run := c.RunE; run != nil {
			c.RunE = func(c *cobra.Command, args []string) error {
				if done, err := a.forward(c, args); done {
					return err
				}
				return explain(strings.TrimPrefix(c.CommandPath(), "rlog "), run(c, args))
			}
		}
	})
	return root
}

// oneOf is names as a choice: "a", "a or b", "a, b or c".
func oneOf(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func forEachCommand(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		forEachCommand(sub, f)
	}
}

// apiFlagOn gives cmd the --api flag: only commands that talk to a Kubo
// daemon have it.
func (a *app) retriesFlagOn(cmd *cobra.Command) {
	cmd.Flags().IntVar(&a.retries, "retries", 0, "attempts in a row without an answer per request, across the sources, before it fails (default 8; 1: no retry, not even after a cut response); see docs/CLI.md for what gives up when")
}

func (a *app) apiFlagOn(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.apiFlag, "api", "", "Kubo RPC API multiaddr (e.g. /ip4/127.0.0.1/tcp/5001): use this daemon instead of the repo's")
}

// brief is err for a status line: its reason, or with --debug all of it.
func (a *app) brief(err error) string {
	if a.debug {
		return err.Error()
	}
	return reason(err)
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
	if a.node != nil {
		return a.node.LendRepo(), nil
	}
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
		return nil, failf(err, "%v (--lock-timeout waits longer)", le)
	}
	return repo, noRepo(dir, err)
}

// repoConfig is where the repo is and its configuration, read without
// opening it.
func (a *app) repoConfig() (string, remotelog.Config, error) {
	dir, err := a.repoDir()
	if err != nil {
		return "", remotelog.Config{}, err
	}
	cfg, err := remotelog.LoadConfig(dir)
	return dir, cfg, noRepo(dir, err)
}

// noRepo says what to do when dir holds no repo; other errors pass.
func noRepo(dir string, err error) error {
	if errors.Is(err, remotelog.ErrNoRepo) && !explained(err) {
		return failf(err, "no rlog repo in %s: create one with 'rlog init', or give --repo DIR or $RLOG_PATH", dir)
	}
	return err
}

// openOrInitRepo opens the repo, creating it first (default preset, a new
// key) when there is none: restore and keep fill a new folder.
func (a *app) openOrInitRepo(ctx context.Context) (*remotelog.Repo, error) {
	repo, err := a.openRepo(ctx)
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
	return a.openRepo(ctx)
}

func parseName(s string) (ipns.Name, error) {
	n, err := remotelog.ParseName(s)
	if err != nil {
		return ipns.Name{}, usageFail(err, "%q is not a log name (a log name looks like k51qzi5uqu5d..., as 'rlog init' and 'rlog id' print it)", s)
	}
	return n, nil
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// plural is "1 page", "2 pages"; "1 page fetch", "2 page fetches".
func plural[N ~int | ~int64 | ~uint64](n N, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	if strings.HasSuffix(noun, "ch") || strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// rfc3339 is how rlog writes a time: RFC 3339, UTC, in seconds.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// flagSuggestion is the flag of c closest to the unknown one err names
// (a typo of one or two letters), or "".
func flagSuggestion(c *cobra.Command, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return ""
	}
	best, bestD := "", 3
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if d := editDistance(name, f.Name); d < bestD && !f.Hidden {
			best, bestD = "--"+f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
