package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"rlog/cas"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/remotelog"
)

// nodeFlags are what a node runs, as rlog run takes them; serve, sync and
// keep set the part they are named after.
type nodeFlags struct {
	serve string

	sync       bool
	listen     []string
	peers      []string
	groupHex   string
	groupName  string
	mode       string
	epoch      time.Duration
	syncFrom   string
	logEvery   time.Duration
	syncJSON   bool
	keep       []string
	keepFrom   []string
	keepBackup string // s3://BUCKET/PREFIX each kept record's log is backed up to
	s3Endpoint string
	republish  time.Duration
	follow     []string
	followFrom []string
	followJSON bool
	followGrp  string // a group kept in the repo, followed merged
	minIntv    time.Duration
	maxIntv    time.Duration
	publish    time.Duration
}

func (a *app) runCmd() *cobra.Command {
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "run [--serve ADDR] [--sync] [--keep NAME] [--follow NAME] [flags]",
		Short: "Run one node that owns the repo: serve, sync, keep, follow and publish",
		Long: `Run the repo's node, as 'ipfs daemon' runs Kubo's: one process that owns the repo and
runs any mix of the gateway (--serve, as 'rlog serve': a trustless gateway, head events
at /rlog/v1/events, Delegated Routing V1, and the web page at / that verifies a log in a
browser, docs/WEB.md; its request limits: docs/CLI.md), MVDS sync with peers (--sync, as
'rlog sync'; the peers of 'rlog peer add' and --peer), keeping other logs readable
(--keep, as 'rlog keep'), following logs (--follow, printing their messages as 'rlog
follow' does) and publishing what was appended every --publish-every (a publish that
fails, offline, is tried again at the next one).

While it runs, every other rlog command in the repo works through it, over the repo's
control socket (run/rlog.sock, 0600 in a 0700 folder, this user's processes only):
append and publish, log, fetch, follow, check, resolve, inspect, block get, pin,
backup, restore, recover, sync status and peer changes. Stop it with Ctrl-C or SIGTERM.`,
		Example: `  rlog run --serve 127.0.0.1:8080 --publish-every 1m
  rlog run --sync --listen /ip4/0.0.0.0/tcp/4001 --serve 0.0.0.0:8080
  rlog run --keep k51qzi5uqu5d... --keep-from http://writer:8080 \
      --follow k51qzi5uqu5e... --follow-from http://friend:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nf.serve == "" && !nf.sync && len(nf.keep) == 0 && len(nf.follow) == 0 && nf.followGrp == "" && nf.publish == 0 {
				return usagef("give what the node runs: --serve ADDR, --sync, --keep NAME, --follow NAME or --publish-every D")
			}
			return a.runNode(cmd, nf)
		},
	}
	f := cmd.Flags()
	f.StringVar(&nf.serve, "serve", "", "serve the repo as a trustless gateway at this address (embedded store)")
	f.BoolVar(&nf.sync, "sync", false, "sync with peers over MVDS (the peers of 'rlog peer add' and --peer)")
	a.syncFlags(f, &nf)
	f.StringSliceVar(&nf.keep, "keep", nil, "keep this log readable (repeatable)")
	f.StringArrayVar(&nf.keepFrom, "keep-from", nil, "where kept logs are read: "+fromForms[len("--from takes "):]+fromsHelp)
	f.DurationVar(&nf.republish, "republish", 12*time.Hour, "how often to put each kept log's newest record again")
	f.StringArrayVar(&nf.follow, "follow", nil, "follow this log (a name, or the share link of a private log) and print its messages (repeatable)")
	f.StringArrayVar(&nf.followFrom, "follow-from", nil, "where followed logs are read"+fromsHelp+" (once with --follow-group)")
	f.BoolVar(&nf.followJSON, "follow-json", false, "print followed messages as JSON lines")
	f.StringVar(&nf.followGrp, "follow-group", "", "follow this group kept in the repo ('rlog group'): its members' logs from --follow-from and, with --sync of its MVDS group, what peers send, merged, each message once")
	f.DurationVar(&nf.minIntv, "min-interval", time.Second, "shortest time between looks when polling (keep, follow)")
	f.DurationVar(&nf.maxIntv, "max-interval", time.Minute, "longest time between looks while nothing changes (keep, follow)")
	f.DurationVar(&nf.publish, "publish-every", 0, "publish what was appended this often (0: only on 'rlog publish')")
	a.apiFlagOn(cmd)
	return cmd
}

// syncFlags are the flags of rlog sync, which rlog run has too.
func (a *app) syncFlags(f interface {
	StringSliceVar(p *[]string, name string, value []string, usage string)
	StringVar(p *string, name string, value string, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
}, nf *nodeFlags) {
	f.StringSliceVar(&nf.listen, "listen", []string{"/ip4/127.0.0.1/tcp/0"}, "libp2p listen multiaddr (sync)")
	f.StringSliceVar(&nf.peers, "peer", nil, "a peer's multiaddr ending in /p2p/ID, for this run (repeatable; 'rlog peer add' keeps one)")
	f.StringVar(&nf.groupHex, "group", "", "MVDS group id, hex (default: the repo's group)")
	f.StringVar(&nf.groupName, "group-name", "", "MVDS group named by a text (SHA-256 of it)")
	f.StringVar(&nf.mode, "mode", "batch", "batch or interactive")
	f.BoolVar(&nf.syncJSON, "json", false, "print received messages as JSON lines")
	f.DurationVar(&nf.epoch, "epoch", 500*time.Millisecond, "length of an epoch")
	f.StringVar(&nf.syncFrom, "from", "", "also read the peers' remote logs from here (a peer's id names its log), so messages already read are acknowledged, not delivered again")
	f.DurationVar(&nf.logEvery, "log-interval", 10*time.Second, "how often to read the peers' remote logs (with --from)")
}

// runNode runs a node as nf says until a signal or a failure.
func (a *app) runNode(cmd *cobra.Command, nf nodeFlags) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	open := a.openRepo
	if len(nf.keep) > 0 {
		open = a.openOrInitRepo
	}
	repo, b, release, err := a.openNodeRepo(ctx, open)
	if err != nil {
		return err
	}
	defer release()
	if nf.serve != "" && b != nil {
		if len(nf.keep) > 0 {
			return usagef("--listen serves the embedded store; this repo keeps logs in Kubo, whose gateway serves them")
		}
		return usagef("this repo publishes to Kubo: its daemon's gateway serves the log")
	}
	var outMu sync.Mutex // one line at a time
	logf := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if !a.debug {
			line = plain(line)
		}
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(a.stderr, line)
	}
	cfg := remotelog.NodeConfig{Backend: b, Serve: nf.serve, PublishEvery: nf.publish, Logf: logf, Commands: nodeCommands}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	var group []byte
	if nf.sync {
		m, err := parseMode(nf.mode)
		if err != nil {
			return err
		}
		if group, err = parseGroup(nf.groupHex, nf.groupName, repo.DefaultGroup()); err != nil {
			return err
		}
		out := &printer{w: a.stdout, asJSON: nf.syncJSON}
		// A private log's bodies are printed opened when the repo holds
		// a key that opens them (the message names no log: each held is
		// tried); else as they came, sealed, with a note.
		keys, err := remotelog.NewHeldKeys(repo.Dir)
		if err != nil {
			return err
		}
		sc := &remotelog.SyncConfig{Listen: nf.listen, Group: group, Mode: m, Epoch: nf.epoch, Peers: nf.peers, LogInterval: nf.logEvery,
			Deliver: func(msg mvds.Message) {
				if nf.followGrp != "" && !msg.Ephemeral() {
					return // the group's stream prints it, once
				}
				id := msg.ID() // over the body as it travels, sealed or not
				if remotelog.IsSealed(msg.Body) {
					if b, err := keys.Open(msg.GroupID, msg.Body); err == nil {
						msg.Body = b
					} else {
						logf("message %s: printed sealed: %s", id, a.brief(err))
					}
				}
				outMu.Lock()
				defer outMu.Unlock()
				out.print(remotelog.Message{ID: id, BodySize: uint64(len(msg.Body)), Message: msg})
			}}
		if nf.syncFrom != "" {
			src, err := remotelog.OpenSource(ctx, nf.syncFrom)
			if err != nil {
				return err
			}
			closers = append(closers, func() { src.Close() })
			sc.From = src
		}
		cfg.Sync = sc
	}
	follow := remotelog.FollowOptions{MinInterval: nf.minIntv, MaxInterval: nf.maxIntv}
	if len(nf.keep) > 0 {
		if len(nf.keepFrom) == 0 {
			return usagef("give --from SOURCE: where the logs are read (a gateway, a repo folder, kubo:...)")
		}
		names, src, err := a.namesFrom(ctx, nf.keep, nf.keepFrom, &closers)
		if err != nil {
			return err
		}
		cfg.Keep = &remotelog.KeepConfig{Names: names, Source: src, Options: remotelog.KeepOptions{Republish: nf.republish, Follow: follow}}
		var store cas.Getter = repo.Store()
		if b != nil {
			store = b.Store
		}
		push, err := a.keepBackup(ctx, nf.keepBackup, nf.s3Endpoint, store, func(format string, args ...any) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintf(a.stdout, format, args...)
		})
		if err != nil {
			return err
		}
		cfg.Keep.Kept = func(name ipns.Name, rec *namesys.Record) {
			outMu.Lock()
			fmt.Fprintf(a.stdout, "kept %s: record sequence %d, head %s\n", name, rec.Sequence, rec.Value)
			outMu.Unlock()
			if push != nil {
				push(rec)
			}
		}
	}
	if len(nf.follow) > 0 {
		if len(nf.followFrom) == 0 {
			return usagef("give --follow-from SOURCE: where followed logs are read")
		}
		// A share link gives its keys to the repo, as 'rlog follow LINK' does.
		var names []ipns.Name
		for _, arg := range followArgs(nf.follow) {
			name, err := nameArg(repo.Dir, arg)
			if err != nil {
				return err
			}
			names = append(names, name)
		}
		src, err := a.openSources(ctx, nf.followFrom)
		if err != nil {
			return err
		}
		closers = append(closers, func() { src.Close() })
		out := &printer{w: a.stdout, asJSON: nf.followJSON}
		for _, name := range names {
			// A private log's bodies are opened with the keys the repo holds.
			opts := follow
			deliver, _, err := opening(repo.Dir, name, &opts.Read, func(m remotelog.Message) error {
				outMu.Lock()
				defer outMu.Unlock()
				return out.print(m)
			})
			if err != nil {
				return err
			}
			cfg.Follow = append(cfg.Follow, remotelog.FollowConfig{Name: name, Source: src, Options: opts, Deliver: deliver})
		}
	}
	// Where the node listens, before anything it delivers.
	cfg.Started = func(node *remotelog.Node) {
		outMu.Lock()
		defer outMu.Unlock()
		if addr := node.GatewayAddr(); addr != nil {
			what := "serving " + repo.Name().String()
			if len(nf.keep) > 0 && !nf.sync && nf.publish == 0 {
				what = "serving kept logs"
			}
			fmt.Fprintf(a.stdout, "%s at http://%s\n", what, addr)
		}
		if st, err := node.SyncStatus(); err == nil {
			for _, addr := range st.Addrs {
				fmt.Fprintf(a.stderr, "listening on %s\n", addr)
			}
			fmt.Fprintf(a.stderr, "syncing group %s with %s, %s mode\n", hex.EncodeToString(group)[:16], plural(len(st.Peers), "peer"), nf.mode)
		}
	}
	node, err := remotelog.StartNode(ctx, repo, cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	if nf.followGrp != "" {
		if err := a.runFollowGroup(ctx, node, nf, &outMu, &closers); err != nil {
			return err
		}
	}
	err = node.Wait(ctx)
	stopped := errors.Is(err, context.Canceled) && ctx.Err() != nil
	if stopped {
		err = nil
		// Say why it stops and when it is done: a service manager's log
		// shows a node that ended on purpose apart from one that died.
		logf("stopping: %v", context.Cause(ctx))
	}
	if cerr := node.Close(); err == nil {
		err = cerr
	}
	if stopped && err == nil {
		logf("stopped")
	}
	return err
}

// namesFrom parses log names and opens the source they are read from,
// which closers then close.
func (a *app) namesFrom(ctx context.Context, args []string, froms []string, closers *[]func()) ([]ipns.Name, remotelog.Source, error) {
	names, err := parseNames(args)
	if err != nil {
		return nil, nil, err
	}
	src, err := a.openSources(ctx, froms)
	if err != nil {
		return nil, nil, err
	}
	*closers = append(*closers, func() { src.Close() })
	return names, src, nil
}

// followArgs are the logs --follow names: each value one share link, or
// names separated by commas.
func followArgs(vals []string) []string {
	var out []string
	for _, v := range vals {
		if remotelog.IsLink(v) {
			out = append(out, v)
			continue
		}
		out = append(out, strings.Split(v, ",")...)
	}
	return out
}

func parseNames(args []string) ([]ipns.Name, error) {
	var names []ipns.Name
	for _, s := range args {
		n, err := parseName(s)
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, nil
}
