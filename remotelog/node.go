package remotelog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/namesys"
)

// NodeConfig says what a Node runs besides owning its repo. The zero
// NodeConfig runs the control socket only: other processes append and
// publish through the node, and the Go API works.
type NodeConfig struct {
	// Backend is where the node's writer publishes and a keeper keeps:
	// nil is the repo's embedded store.
	Backend *Backend
	// Serve, when set, is the address the gateway listens on
	// ("127.0.0.1:8080"; port 0 picks one: see GatewayAddr).
	Serve string
	// Sync, when set, runs MVDS with peers on libp2p.
	Sync *SyncConfig
	// Keep, when set, keeps other logs readable (see Keep).
	Keep *KeepConfig
	// Follow subscribes to logs at start, as Subscribe does.
	Follow []FollowConfig
	// PublishEvery, when set, publishes what was appended since the last
	// publish this often; a publish that fails (the backend is offline) is
	// tried again at the next one.
	PublishEvery time.Duration
	// Logf, when set, hears what the node reports (a peer connected, a
	// source unavailable, a publish failed): one line each.
	Logf func(format string, args ...any)
	// Started, when set, is called once everything listens (GatewayAddr,
	// SyncStatus answer), before anything is synced, kept, followed or
	// published: a program prints where it listens there, before any
	// message it delivers.
	Started func(*Node)
	// Commands, when set, runs the command lines other processes send to
	// the control socket (rlog runs its own commands).
	Commands CommandRunner
	// Now is the writer's clock; nil: time.Now.
	Now func() time.Time
}

// KeepConfig is what a node keeps: logs Names read from Source, held in
// the node's backend (Options as Keep takes them; their Follow.Save is the
// repo's keep cursors).
type KeepConfig struct {
	Names   []ipns.Name
	Source  Source
	Options KeepOptions
	// Kept, when set, hears each record kept, after the gateway's
	// followers do.
	Kept func(name ipns.Name, rec *namesys.Record)
}

// FollowConfig is a subscription started with the node.
type FollowConfig struct {
	Name    ipns.Name
	Source  Source
	Options FollowOptions
	Deliver func(Message) error
}

// Node owns an open repo and runs, in one process, any mix of the gateway,
// MVDS sync with peers, keepers of other logs, followers of subscriptions
// and scheduled publishing. While it runs, its control socket in the repo
// lets other processes (every rlog command) use the repo through it.
//
//	repo, _ := remotelog.Open(dir)
//	defer repo.Close()
//	node, _ := remotelog.StartNode(ctx, repo, remotelog.NodeConfig{Serve: "127.0.0.1:8080"})
//	defer node.Close()
//	node.Append(ctx, nil, [][]byte{[]byte("hello")})
//	node.Publish(ctx)
type Node struct {
	repo *Repo
	cfg  NodeConfig
	w    *Writer
	srv  *Server
	sync *syncer // nil without Sync

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	gateway  *http.Server
	gwAddr   net.Addr
	control  *http.Server
	sockPath string

	logMu sync.Mutex
	cfgMu sync.Mutex // the repo's config (its peers)
	subMu sync.Mutex
	subs  map[string]*subscription // by log name
	kept  map[string]*subscription // kept logs' progress, by name

	closeOnce sync.Once
	closeErr  error
}

type subscription struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when its follower has returned
	err    error         // why it ended, once done is closed
	status FollowStatus
	cur    Cursor
	src    Source
}

// StartNode starts a node on repo, which it uses until Close (the caller
// closes the repo after the node). Everything it listens on is listening
// when it returns; a part that fails to start fails StartNode, and what
// had started is stopped.
func StartNode(ctx context.Context, repo *Repo, cfg NodeConfig) (_ *Node, err error) {
	if repo.readOnly {
		return nil, fmt.Errorf("remotelog: node: %s is open read-only", repo.Dir)
	}
	n := &Node{repo: repo, cfg: cfg, subs: map[string]*subscription{}}
	n.ctx, n.cancel = context.WithCancelCause(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.w, err = repo.Writer(cfg.Backend, cfg.Now); err != nil {
		return nil, err
	}
	n.srv = NewServer(repo, n.w, cfg.Now)
	if cfg.Sync != nil {
		if n.sync, err = startSync(ctx, n, *cfg.Sync); err != nil {
			return nil, err
		}
		n.srv.OnAppend = n.sync.appended
		n.srv.Ephemeral = true
		n.srv.Status = func() any { return n.sync.status() }
	}
	if cfg.Serve != "" {
		if err := n.startGateway(cfg.Serve); err != nil {
			return nil, err
		}
	}
	if err := n.startControl(); err != nil {
		return nil, err
	}
	// Everything listens: the caller says so before anything is delivered.
	if cfg.Started != nil {
		cfg.Started(n)
	}
	if n.sync != nil {
		n.sync.run()
	}
	if cfg.Keep != nil {
		n.startKeep(*cfg.Keep)
	}
	for _, f := range cfg.Follow {
		if err := n.Subscribe(f.Name, f.Source, f.Options, f.Deliver); err != nil {
			return nil, err
		}
	}
	if cfg.PublishEvery > 0 {
		n.goRun(func() { n.publishEvery(cfg.PublishEvery) })
	}
	return n, nil
}

// goRun runs f until the node stops.
func (n *Node) goRun(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// fail stops the node for err: Wait returns it.
func (n *Node) fail(err error) { n.cancel(err) }

func (n *Node) logf(format string, args ...any) {
	if n.cfg.Logf == nil {
		return
	}
	n.logMu.Lock()
	defer n.logMu.Unlock()
	n.cfg.Logf(format, args...)
}

// Repo is the repo the node owns.
func (n *Node) Repo() *Repo { return n.repo }

// LendRepo is the node's repo for a command the node runs: the same open
// repo, whose Close leaves it open.
func (n *Node) LendRepo() *Repo {
	r := *n.repo
	r.borrowed = true
	return &r
}

// WithWriter runs f with the node's writer, while no append or publish
// runs (a command the node runs that reads or repairs the log).
func (n *Node) WithWriter(f func(*Writer) error) error {
	n.srv.mu.Lock()
	defer n.srv.mu.Unlock()
	return f(n.w)
}

// Writer is the node's writer of the repo's log. Append and Publish
// through the node, not through it, so that peers and followers hear of
// them.
func (n *Node) Writer() *Writer { return n.w }

// GatewayAddr is where the gateway listens; nil without one.
func (n *Node) GatewayAddr() net.Addr { return n.gwAddr }

func (n *Node) startGateway(addr string) error {
	if n.repo.Config.Backend == "kubo" && n.cfg.Backend != nil {
		return errors.New("remotelog: node: this repo publishes to Kubo: its daemon's gateway serves the log")
	}
	gw, err := n.srv.Gateway()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("remotelog: node: listen on %s: %w", addr, err)
	}
	n.gwAddr = ln.Addr()
	n.gateway = &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	n.gateway.RegisterOnShutdown(n.srv.CloseStreams) // followers: at once
	n.goRun(func() {
		if err := n.gateway.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.fail(fmt.Errorf("remotelog: gateway: %w", err))
		}
	})
	return nil
}

func (n *Node) startControl() error {
	ln, err := ListenControl(n.repo.Dir)
	if err != nil {
		return err
	}
	n.sockPath = ControlSocket(n.repo.Dir)
	n.control = &http.Server{Handler: checkPeer(n.controlHandler()), ConnContext: controlConnContext, ReadHeaderTimeout: 10 * time.Second}
	n.goRun(func() {
		if err := n.control.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.fail(fmt.Errorf("remotelog: control socket: %w", err))
		}
	})
	return nil
}

func (n *Node) startKeep(kc KeepConfig) {
	target := KeepTarget{Store: n.repo.Store(), Names: n.repo.Names()}
	if n.cfg.Backend != nil {
		target = KeepTarget{Store: n.cfg.Backend.Store, Names: n.cfg.Backend.Names}
	}
	cursors := KeepCursors(n.repo.Dir)
	for _, name := range kc.Names {
		opts := kc.Options
		kept := &subscription{src: kc.Source}
		kept.cur, _ = cursors.Get(name)
		n.subMu.Lock()
		if n.kept == nil {
			n.kept = map[string]*subscription{}
		}
		n.kept[name.String()] = kept
		n.subMu.Unlock()
		opts.Follow.Save = func(c Cursor) error {
			n.subMu.Lock()
			kept.cur = c
			n.subMu.Unlock()
			return cursors.Save(name, c)
		}
		opts.Follow.Status = func(s FollowStatus) {
			n.subMu.Lock()
			kept.status = s
			n.subMu.Unlock()
			if s.Err != nil {
				n.logf("%s: source unavailable: %v; trying again in %s", name, s.Err, s.Wait)
			}
		}
		opts.Kept = func(rec *namesys.Record) {
			n.srv.Announce(HeadEvent{Name: name.String(), Head: rec.Value.String(), RecordSeq: rec.Sequence, Record: rec.Raw})
			if kc.Kept != nil {
				kc.Kept(name, rec)
			}
		}
		n.goRun(func() {
			cur, err := cursors.Get(name)
			if err == nil {
				_, err = Keep(n.ctx, kc.Source, name, cur, target, opts)
			}
			if err != nil && n.ctx.Err() == nil {
				n.fail(fmt.Errorf("remotelog: keep %s: %w", name, err))
			}
		})
	}
}

// publishEvery publishes what is new every d.
func (n *Node) publishEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.w.Len() == n.w.Published() {
			continue
		}
		if _, err := n.Publish(n.ctx); err != nil && n.ctx.Err() == nil {
			n.logf("publish: %v; trying again in %s", err, d)
		}
	}
}

// Append appends bodies to group (nil: the repo's default group); they
// are durable when it returns, and sent to sync peers. The bodies of a
// private log are sealed under its newest read key first (see AppendMeta).
func (n *Node) Append(ctx context.Context, group []byte, bodies [][]byte) ([]Appended, error) {
	return n.AppendMeta(ctx, group, nil, bodies)
}

// Publish publishes the log and pushes its new head to the gateway's
// followers.
func (n *Node) Publish(ctx context.Context) (PublishResult, error) { return n.srv.Publish(ctx) }

// Fetch delivers what the repo has not read of log name from src, and
// records how far it read (the cursor fetch and Subscribe share).
func (n *Node) Fetch(ctx context.Context, src Source, name ipns.Name, opts ReadOptions, deliver func(Message) error) (Stats, error) {
	cur, err := n.repo.Cursor(name)
	if err != nil {
		return Stats{}, err
	}
	next, st, err := CatchUp(ctx, src, name, cur, opts, deliver)
	if next != cur {
		if serr := n.repo.SaveCursor(name, next); serr != nil {
			return st, errors.Join(err, serr)
		}
	}
	return st, err
}

// Subscribe follows log name from src until Unsubscribe or Close,
// delivering each verified message once, also across restarts (the
// repo's cursor is saved after each batch). opts.Save is the repo's
// cursor. A failing source is reported to opts.Status and Logf and tried
// again; a fork or a failing deliver ends the subscription (Status says
// why).
func (n *Node) Subscribe(name ipns.Name, src Source, opts FollowOptions, deliver func(Message) error) error {
	_, err := n.subscribe(n.ctx, name, src, opts, func(context.Context) func(Message) error { return deliver })
	return err
}

// Follow is Subscribe for as long as ctx lasts: it returns when ctx ends
// (nil), the node closes (nil), or the subscription fails (a fork: its
// error; a failing source or deliver is tried again, as Follow does). While it runs the node's status lists it,
// and a Subscribe to the same log fails.
func (n *Node) Follow(ctx context.Context, name ipns.Name, src Source, opts FollowOptions, deliver func(Message) error) error {
	sub, err := n.subscribe(ctx, name, src, opts, func(context.Context) func(Message) error { return deliver })
	if err != nil {
		return err
	}
	<-sub.done
	n.subMu.Lock()
	if n.subs[name.String()] == sub {
		delete(n.subs, name.String())
	}
	n.subMu.Unlock()
	if ctx.Err() != nil || n.ctx.Err() != nil {
		return nil
	}
	return sub.err
}

// subscribe starts a subscription delivering to what deliverIn makes of
// the subscription's context, which ends with parent and with the node.
func (n *Node) subscribe(parent context.Context, name ipns.Name, src Source, opts FollowOptions, deliverIn func(context.Context) func(Message) error) (*subscription, error) {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	if _, ok := n.subs[name.String()]; ok {
		return nil, fmt.Errorf("remotelog: node: already subscribed to %s", name)
	}
	cur, err := n.repo.Cursor(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(n.ctx)
	stop := context.AfterFunc(parent, cancel)
	sub := &subscription{cancel: cancel, cur: cur, done: make(chan struct{}), src: src}
	n.subs[name.String()] = sub
	saved := opts.Save
	opts.Save = func(c Cursor) error {
		n.subMu.Lock()
		sub.cur = c
		n.subMu.Unlock()
		if err := n.repo.SaveCursor(name, c); err != nil || saved == nil {
			return err
		}
		return saved(c)
	}
	status := opts.Status
	opts.Status = func(s FollowStatus) {
		n.subMu.Lock()
		sub.status = s
		n.subMu.Unlock()
		if s.Err != nil {
			n.logf("%s: source unavailable: %v; trying again in %s", name, s.Err, s.Wait)
		}
		if status != nil {
			status(s)
		}
	}
	n.goRun(func() {
		defer close(sub.done)
		defer stop()
		_, err := Follow(ctx, src, name, cur, opts, deliverIn(ctx))
		sub.err = err
		if err != nil && ctx.Err() == nil {
			n.logf("%s: subscription ended: %v", name, err)
			n.subMu.Lock()
			sub.status = FollowStatus{Err: err}
			n.subMu.Unlock()
		}
	})
	return sub, nil
}

// SubscribeChan is Subscribe delivering on a channel, which is closed
// when the subscription ends (Unsubscribe, Close, a fork). A message is
// taken as delivered once the receiver has it: its cursor is saved after
// the batch it is in.
func (n *Node) SubscribeChan(name ipns.Name, src Source, opts FollowOptions) (<-chan Message, error) {
	ch := make(chan Message)
	sub, err := n.subscribe(n.ctx, name, src, opts, func(ctx context.Context) func(Message) error {
		return func(m Message) error {
			select {
			case ch <- m:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	if err != nil {
		return nil, err
	}
	go func() {
		<-sub.done // nothing is sent after its follower returned
		close(ch)
	}()
	return ch, nil
}

// Unsubscribe ends the subscription to log name.
func (n *Node) Unsubscribe(name ipns.Name) {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	if s, ok := n.subs[name.String()]; ok {
		s.cancel()
		delete(n.subs, name.String())
	}
}

// Wait returns when the node stops: nil after Close, or the error of the
// part that failed (the node then stops).
func (n *Node) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-n.ctx.Done():
	}
	if err := context.Cause(n.ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Done is closed when the node stops.
func (n *Node) Done() <-chan struct{} { return n.ctx.Done() }

// Close stops everything the node runs: requests under way get a few
// seconds to finish, event streams end at once; then its state is saved
// and its writer closed. The repo stays open.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, hs := range []*http.Server{n.gateway, n.control} {
			if hs == nil {
				continue
			}
			if err := hs.Shutdown(sctx); err != nil {
				hs.Close()
			}
		}
		if n.sockPath != "" {
			os.Remove(n.sockPath)
		}
		n.cancel(context.Canceled)
		n.wg.Wait()
		if n.sync != nil {
			errs = append(errs, n.sync.close())
		}
		if n.w != nil {
			errs = append(errs, n.w.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// NodeStatus is what a node runs and how far it is.
type NodeStatus struct {
	Name          string               `json:"name"`
	Gateway       string               `json:"gateway,omitempty"` // http://ADDR
	Messages      uint64               `json:"messages"`
	Published     uint64               `json:"published"`
	Sync          *SyncStatus          `json:"sync,omitempty"`
	Subscriptions []SubscriptionStatus `json:"subscriptions,omitempty"`
	// Kept is how far each kept log is held (rlog keep).
	Kept []SubscriptionStatus `json:"kept,omitempty"`
}

// SubscriptionStatus is one subscription: how far it has read, and why it
// last failed.
type SubscriptionStatus struct {
	Name      string `json:"name"`
	Seq       uint64 `json:"seq"`
	RecordSeq uint64 `json:"record_seq"`
	Error     string `json:"error,omitempty"`
	// Source is the source that answered last, when read from a Pool.
	Source string `json:"source,omitempty"`
}

// sourceInUse names the source of a pool that answered last, or "".
func sourceInUse(src Source) string {
	if p, ok := src.(interface{ Stats() PoolStats }); ok {
		return p.Stats().Using
	}
	return ""
}

func (s *subscription) report(name string) SubscriptionStatus {
	ss := SubscriptionStatus{Name: name, Seq: s.cur.Seq, RecordSeq: s.cur.RecordSeq, Source: sourceInUse(s.src)}
	if s.status.Err != nil {
		ss.Error = s.status.Err.Error()
	}
	return ss
}

// Status is what the node runs and how far it is.
func (n *Node) Status() NodeStatus {
	st := NodeStatus{Name: n.repo.Name().String()}
	if n.gwAddr != nil {
		st.Gateway = "http://" + n.gwAddr.String()
	}
	n.WithWriter(func(w *Writer) error {
		st.Messages, st.Published = w.Len(), w.Published()
		return nil
	})
	if ss, err := n.SyncStatus(); err == nil {
		st.Sync = &ss
	}
	n.subMu.Lock()
	defer n.subMu.Unlock()
	for name, s := range n.subs {
		st.Subscriptions = append(st.Subscriptions, s.report(name))
	}
	for name, s := range n.kept {
		st.Kept = append(st.Kept, s.report(name))
	}
	byName := func(a, b SubscriptionStatus) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(st.Subscriptions, byName)
	slices.SortFunc(st.Kept, byName)
	return st
}

// SubscribeGroup follows group name kept in the repo (Groups) from src
// until ctx ends or the node closes, delivering the members' messages
// merged (FollowGroup), each once, also across restarts (the group's
// cursors), and keeping the group's heads for the node's next messages in
// it. When the node syncs the group's MVDS group, what peers send joins
// the stream: each message once, whether it came over MVDS or from its
// member's log first. It returns when the subscription has started; done is closed when
// it ends, with its error in *errp.
func (n *Node) SubscribeGroup(ctx context.Context, name string, src Source, opts FollowGroupOptions, deliver func(GroupMessage) error) (done <-chan struct{}, errp *error, err error) {
	store := Groups(n.repo.Dir)
	g, err := store.Get(name)
	if err != nil {
		return nil, nil, err
	}
	heads := opts.Heads
	opts.Heads = func(hs []string) {
		if err := store.Update(name, func(g *Group) error { g.Heads = hs; return nil }); err != nil {
			n.logf("group %s: save its heads: %v", name, err)
		}
		if heads != nil {
			heads(hs)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	stopLive := n.liveGroup(g, &opts) // messages from MVDS peers join
	ch := make(chan struct{})
	var ferr error
	n.goRun(func() {
		defer close(ch)
		defer stop()
		defer stopLive()
		defer cancel()
		if ferr = FollowGroup(ctx, src, g, store, opts, deliver); ferr != nil {
			n.logf("group %s: subscription ended: %v", name, ferr)
		}
	})
	return ch, &ferr, nil
}
