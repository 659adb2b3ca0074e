package remotelog

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"rlog/internal/atomicfile"
	"rlog/mvds"
)

// SyncConfig is how a node syncs its log with peers over MVDS on libp2p
// (protocol /rlog/mvds/1.0.0). Its identity is the repo's key: its peer id
// names the same key as its log.
type SyncConfig struct {
	Listen []string // libp2p multiaddrs; default /ip4/127.0.0.1/tcp/0
	Group  []byte   // the MVDS group; nil: the repo's group
	Mode   mvds.Mode
	Epoch  time.Duration // default 500 ms
	// Peers are multiaddrs ending in /p2p/ID, synced with for this run;
	// the peers in the repo's config (AddPeer) are synced with too.
	Peers []string
	// From, when set, is where the peers' remote logs are read (a peer id
	// names its log) every LogInterval (default 10 s): messages read there
	// are delivered once and acknowledged when peers send them.
	From        Source
	LogInterval time.Duration
	// Deliver hears each message of the group the node did not have, once
	// (from a peer or from its remote log), also across restarts. A
	// private log's body comes sealed: HeldKeys opens it.
	Deliver func(mvds.Message)
}

// SyncStatus is a sync node's state (`rlog sync status --json`).
type SyncStatus struct {
	ID      string         `json:"id"`
	Addrs   []string       `json:"addrs"`
	Group   string         `json:"group"`
	Epoch   int64          `json:"epoch"`
	Peers   []PeerStatus   `json:"peers"`
	Records []RecordStatus `json:"records,omitempty"`
	Pending map[string]int `json:"pending_records_per_peer"`
}

// RecordStatus is one thing the node still owes a peer.
type RecordStatus struct {
	Type      string `json:"type"` // message, offer or request
	Peer      string `json:"peer"`
	ID        string `json:"id"` // message id, hex
	Group     string `json:"group"`
	SendCount int    `json:"send_count"`
	SendEpoch int64  `json:"send_epoch"`
}

// PeerStatus is one peer of a sync node.
type PeerStatus struct {
	ID        string `json:"id"`
	Connected bool   `json:"connected"`
	Paused    bool   `json:"paused,omitempty"`
	Interval  int64  `json:"interval,omitempty"` // epochs between syncs, when more than 1
	Addr      string `json:"addr,omitempty"`     // as the repo's config has it
}

// PeerConfig is a peer kept in the repo's config: synced with by every
// node that syncs in the repo, across restarts.
type PeerConfig struct {
	Addr     string `json:"addr"` // multiaddr ending in /p2p/ID
	Paused   bool   `json:"paused,omitempty"`
	Interval int64  `json:"interval,omitempty"` // sync every Interval epochs
}

// ID is the peer id at the end of the peer's address.
func (p PeerConfig) ID() (mvds.PeerID, error) { return peerIDOf(p.Addr) }

func peerIDOf(addr string) (mvds.PeerID, error) {
	i := strings.LastIndex(addr, "/p2p/")
	if i < 0 {
		return "", fmt.Errorf("remotelog: peer %q: want a multiaddr ending in /p2p/PEERID", addr)
	}
	id, err := lpeer.Decode(addr[i+len("/p2p/"):])
	if err != nil {
		return "", fmt.Errorf("remotelog: peer %q: %w", addr, err)
	}
	return mvds.PeerID(id.String()), nil
}

// syncer is a node's MVDS part.
type syncer struct {
	n      *Node
	cfg    SyncConfig
	group  []byte
	host   *mvds.P2P
	runner *mvds.Runner
	mu     sync.Mutex // serialises Deliver
	// removed are the peers removed while the node runs: one that still
	// sends is not taken back as a peer (until added again).
	removedMu sync.Mutex
	removed   map[mvds.PeerID]bool
	// taps hear every message delivered, with the peer it came from (a
	// group's readers, the gateway's ephemeral stream).
	tapMu sync.Mutex
	taps  map[int]func(from mvds.PeerID, m mvds.Message)
	tapN  int
}

func startSync(ctx context.Context, n *Node, cfg SyncConfig) (_ *syncer, err error) {
	if cfg.Group == nil {
		cfg.Group = n.repo.DefaultGroup()
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if cfg.LogInterval <= 0 {
		cfg.LogInterval = 10 * time.Second
	}
	if cfg.Epoch <= 0 {
		cfg.Epoch = 500 * time.Millisecond
	}
	s := &syncer{n: n, cfg: cfg, group: cfg.Group, removed: map[mvds.PeerID]bool{}}
	// Ephemeral messages go on to the gateway's followers, once.
	s.tap(func(from mvds.PeerID, m mvds.Message) {
		if m.Ephemeral() {
			n.srv.AnnounceEphemeral(ephemeralEvent(from, m))
		}
	})
	if s.host, err = mvds.NewP2P(n.repo.Key(), cfg.Listen...); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.host.Close()
		}
	}()
	// The node, restored from the repo when it ran before.
	statePath := filepath.Join(n.repo.Dir, "mvds", hex.EncodeToString(s.group)+".json")
	mcfg := mvds.Config{ID: s.host.ID(), Mode: cfg.Mode}
	node := mvds.NewNode(mcfg)
	if raw, err := os.ReadFile(statePath); err == nil {
		var st mvds.State
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("remotelog: sync: state %s: %w", statePath, err)
		}
		if node, err = mvds.RestoreNode(mcfg, st); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(statePath), 0o755); err != nil {
		return nil, fmt.Errorf("remotelog: sync: %w", err)
	}
	// Every message of the group in the local log is offered to peers.
	w := n.w
	if w.Len() > 0 {
		if err := w.Scan(1, w.Len(), func(m Message) error {
			// A large message is too large for MVDS: peers read it from the log.
			if string(m.GroupID) == string(s.group) && !m.IsLarge() {
				node.Send(m.Message)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	s.runner = mvds.NewRunner(mvds.RunnerConfig{
		Node: node, Transport: s.host, Epoch: cfg.Epoch,
		Save: func(st mvds.State) error {
			b, err := json.Marshal(st)
			if err != nil {
				return err
			}
			return atomicfile.Write(statePath, b, 0o644)
		},
		DeliverFrom: s.deliver,
	})
	for _, addr := range cfg.Peers {
		if _, err := s.connect(ctx, addr); err != nil {
			return nil, err
		}
	}
	for _, p := range n.repo.Config.Peers {
		if _, err := s.connect(ctx, p.Addr); err != nil {
			return nil, err
		}
		s.setPeer(p)
	}
	return s, nil
}

// run starts syncing: the runner, and the reader of the peers' logs.
func (s *syncer) run() {
	n := s.n
	n.goRun(func() {
		err := s.runner.Run(n.ctx, s.acceptPeers(n.ctx))
		if err != nil && !errors.Is(err, context.Canceled) {
			n.fail(fmt.Errorf("remotelog: sync: %w", err))
		}
	})
	if s.cfg.From != nil {
		n.goRun(s.readPeerLogs)
	}
}

func (s *syncer) deliver(from mvds.PeerID, m mvds.Message) {
	s.tapMu.Lock()
	for _, f := range s.taps {
		f(from, m)
	}
	s.tapMu.Unlock()
	if s.cfg.Deliver == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Deliver(m)
}

// tap has f hear every message delivered from now on, with the peer it
// came from, until the returned stop is called. f must not block.
func (s *syncer) tap(f func(from mvds.PeerID, m mvds.Message)) (stop func()) {
	s.tapMu.Lock()
	defer s.tapMu.Unlock()
	if s.taps == nil {
		s.taps = map[int]func(mvds.PeerID, mvds.Message){}
	}
	s.tapN++
	k := s.tapN
	s.taps[k] = f
	return func() {
		s.tapMu.Lock()
		defer s.tapMu.Unlock()
		delete(s.taps, k)
	}
}

// connect makes the peer at addr a peer of the group; an unreachable peer
// is retried by MVDS (and reported).
func (s *syncer) connect(ctx context.Context, addr string) (mvds.PeerID, error) {
	pid, err := s.host.Connect(ctx, addr)
	if pid == "" {
		return "", fmt.Errorf("remotelog: sync: peer %s: %w", addr, err)
	}
	s.removedMu.Lock()
	delete(s.removed, pid)
	s.removedMu.Unlock()
	if err != nil {
		s.n.logf("peer %s not reachable yet (%v); MVDS retries", addr, err)
	}
	s.runner.Do(func(n *mvds.Node) { n.AddPeer(s.group, pid) })
	return pid, nil
}

func (s *syncer) setPeer(p PeerConfig) {
	id, err := p.ID()
	if err != nil {
		return
	}
	s.runner.Do(func(n *mvds.Node) { n.SetPeer(id, mvds.PeerOptions{Paused: p.Paused, Interval: p.Interval}) })
}

func (s *syncer) removePeer(p PeerConfig) {
	id, _ := p.ID()
	s.runner.Do(func(n *mvds.Node) { // with acceptPeers' look, under the runner's lock
		s.removedMu.Lock()
		s.removed[id] = true
		s.removedMu.Unlock()
		n.RemovePeer(s.group, id)
	})
}

func (s *syncer) wasRemoved(id mvds.PeerID) bool {
	s.removedMu.Lock()
	defer s.removedMu.Unlock()
	return s.removed[id]
}

func (s *syncer) appended(out []Appended) {
	s.runner.Do(func(n *mvds.Node) {
		for _, ap := range out {
			if string(ap.GroupID) == string(s.group) && !ap.IsLarge() {
				n.Send(ap.Message)
			}
		}
	})
}

// ID is the sync node's peer id.
func (s *syncer) id() mvds.PeerID { return s.host.ID() }

func (s *syncer) status() SyncStatus {
	st := SyncStatus{ID: string(s.host.ID()), Addrs: s.host.Addrs(), Group: hex.EncodeToString(s.group), Pending: map[string]int{}}
	addrs := map[mvds.PeerID]PeerConfig{}
	for _, p := range s.n.peersConfig() {
		if id, err := p.ID(); err == nil {
			addrs[id] = p
		}
	}
	s.runner.Do(func(n *mvds.Node) {
		st.Epoch = n.Epoch()
		for _, p := range n.Peers(s.group) {
			pc := addrs[p]
			st.Peers = append(st.Peers, PeerStatus{ID: string(p), Connected: s.host.Connected(p), Paused: pc.Paused, Interval: pc.Interval, Addr: pc.Addr})
			st.Pending[string(p)] = 0
		}
		for _, r := range n.Records() {
			st.Records = append(st.Records, RecordStatus{Type: strings.ToLower(r.Type.String()), Peer: string(r.Peer), ID: hex.EncodeToString(r.ID[:]),
				Group: hex.EncodeToString(r.Group), SendCount: r.SendCount, SendEpoch: r.SendEpoch})
			st.Pending[string(r.Peer)]++
		}
	})
	return st
}

func (s *syncer) close() error { return s.host.Close() }

// acceptPeers passes packets on to the node, first adding a sender that is
// not yet a peer of the group: a peer that connects to this node is synced
// with, as if both sides had named each other.
func (s *syncer) acceptPeers(ctx context.Context) <-chan mvds.Packet {
	in := s.host.Incoming()
	out := make(chan mvds.Packet)
	go func() {
		defer close(out)
		for {
			var pk mvds.Packet
			var ok bool
			select {
			case <-ctx.Done():
				return
			case pk, ok = <-in:
				if !ok {
					return
				}
			}
			fresh := false
			s.runner.Do(func(n *mvds.Node) {
				if !s.wasRemoved(pk.From) && !slices.Contains(n.Peers(s.group), pk.From) {
					n.AddPeer(s.group, pk.From)
					fresh = true
				}
			})
			if fresh {
				s.n.logf("peer %s connected: syncing with it too", pk.From)
			}
			select {
			case out <- pk:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// readPeerLogs reads each peer's remote log (a sync peer's id is the key of
// its log) now and every interval: messages of the group the node does not
// have are delivered, once, and become known to the node, which then
// acknowledges them when the peer sends or offers them.
func (s *syncer) readPeerLogs() {
	ctx := s.n.ctx
	cursors := SyncCursors(s.n.repo.Dir)
	for {
		var peers []mvds.PeerID
		s.runner.Do(func(n *mvds.Node) { peers = n.Peers(s.group) })
		for _, p := range peers {
			pid, err := lpeer.Decode(string(p))
			if err != nil {
				continue
			}
			name := ipns.NameFromPeer(pid)
			cur, _ := cursors.Get(name)
			next, _, err := CatchUp(ctx, s.cfg.From, name, cur, ReadOptions{}, func(m Message) error {
				// A large message cannot travel over MVDS: it is read from
				// the log only.
				if string(m.GroupID) != string(s.group) || m.IsLarge() {
					return nil
				}
				fresh := false
				s.runner.Do(func(n *mvds.Node) {
					if !n.Has(m.ID) {
						n.Have(m.Message)
						fresh = true
					}
				})
				if fresh {
					s.deliver(p, m.Message)
				}
				return nil
			})
			if next != cur {
				cursors.Save(name, next)
			}
			if err != nil && !errors.Is(err, ErrNoLog) && ctx.Err() == nil {
				s.n.logf("remote log of %s: %v", p, err)
			}
		}
		t := time.NewTimer(s.cfg.LogInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ErrNoSync: the node does not sync (it was started without Sync).
var ErrNoSync = errors.New("this node does not sync with peers (start it with sync)")

// SyncStatus is the node's sync state; ErrNoSync when it does not sync.
func (n *Node) SyncStatus() (SyncStatus, error) {
	if n.sync == nil {
		return SyncStatus{}, ErrNoSync
	}
	return n.sync.status(), nil
}

// PeerID is the node's libp2p peer id (its repo's key); empty when it
// does not sync.
func (n *Node) PeerID() string {
	if n.sync == nil {
		return ""
	}
	return string(n.sync.id())
}

func (n *Node) peersConfig() []PeerConfig {
	n.cfgMu.Lock()
	defer n.cfgMu.Unlock()
	return slices.Clone(n.repo.Config.Peers)
}

// AddPeer adds the peer at addr (a multiaddr ending in /p2p/ID) to the
// repo's config, and syncs with it now when the node syncs.
func (n *Node) AddPeer(ctx context.Context, addr string) (PeerConfig, error) {
	return n.ChangePeer(ctx, PeerChange{Op: "add", Peer: addr})
}

// RemovePeer removes the peer (its id or address) from the repo's config
// and stops syncing with it, dropping what was owed to it.
func (n *Node) RemovePeer(peer string) (PeerConfig, error) {
	return n.ChangePeer(context.Background(), PeerChange{Op: "rm", Peer: peer})
}

// PausePeer holds what the node owes the peer until ResumePeer; kept in
// the repo's config.
func (n *Node) PausePeer(peer string) (PeerConfig, error) {
	return n.ChangePeer(context.Background(), PeerChange{Op: "pause", Peer: peer})
}

// ResumePeer syncs with a paused peer again.
func (n *Node) ResumePeer(peer string) (PeerConfig, error) {
	return n.ChangePeer(context.Background(), PeerChange{Op: "resume", Peer: peer})
}

// SetPeerInterval syncs with the peer every epochs epochs (0 or 1: every
// epoch).
func (n *Node) SetPeerInterval(peer string, epochs int64) (PeerConfig, error) {
	return n.ChangePeer(context.Background(), PeerChange{Op: "interval", Peer: peer, Interval: epochs})
}

// Peers are the peers in the repo's config.
func (n *Node) Peers() []PeerConfig { return n.peersConfig() }

// changePeers changes the peers of the repo's config with f and saves it.
func (n *Node) changePeers(f func([]PeerConfig) ([]PeerConfig, PeerConfig, error)) (PeerConfig, error) {
	n.cfgMu.Lock()
	defer n.cfgMu.Unlock()
	return ChangePeers(n.repo, f)
}

// ChangePeers changes the peers in the config of repo (open for writing)
// with f (AddPeerTo, RemovePeerFrom, UpdatePeerIn) and saves the config.
func ChangePeers(repo *Repo, f func([]PeerConfig) ([]PeerConfig, PeerConfig, error)) (PeerConfig, error) {
	ps, p, err := f(slices.Clone(repo.Config.Peers))
	if err != nil {
		return p, err
	}
	cfg := repo.Config
	cfg.Peers = ps
	if err := repo.SaveConfig(cfg); err != nil {
		return p, err
	}
	return p, nil
}

// AddPeerTo adds the peer at addr to ps; a peer already there (by its id)
// gets the new address.
func AddPeerTo(ps []PeerConfig, addr string) ([]PeerConfig, PeerConfig, error) {
	id, err := peerIDOf(addr)
	if err != nil {
		return ps, PeerConfig{}, err
	}
	for i, p := range ps {
		if pid, _ := p.ID(); pid == id {
			ps[i].Addr = addr
			return ps, ps[i], nil
		}
	}
	p := PeerConfig{Addr: addr}
	return append(ps, p), p, nil
}

// RemovePeerFrom removes the peer named by its id or address from ps.
func RemovePeerFrom(ps []PeerConfig, peer string) ([]PeerConfig, PeerConfig, error) {
	i, err := findPeer(ps, peer)
	if err != nil {
		return ps, PeerConfig{}, err
	}
	p := ps[i]
	return slices.Delete(ps, i, i+1), p, nil
}

// UpdatePeerIn changes the peer named by its id or address in ps with f.
func UpdatePeerIn(ps []PeerConfig, peer string, f func(*PeerConfig) error) ([]PeerConfig, PeerConfig, error) {
	i, err := findPeer(ps, peer)
	if err != nil {
		return ps, PeerConfig{}, err
	}
	if err := f(&ps[i]); err != nil {
		return ps, PeerConfig{}, err
	}
	return ps, ps[i], nil
}

// findPeer is the index of the peer named by its id or its address.
func findPeer(ps []PeerConfig, peer string) (int, error) {
	for i, p := range ps {
		id, _ := p.ID()
		if p.Addr == peer || string(id) == peer {
			return i, nil
		}
	}
	return -1, fmt.Errorf("remotelog: no peer %s in the repo's config (rlog peer ls lists them)", peer)
}

// SendEphemeral sends body to the node's sync group as an ephemeral MVDS
// message (4/MVDS-META): once, to the peers online now and to the
// followers of the gateway's ephemeral stream, never logged, stored,
// acknowledged or retransmitted (typing, presence). It needs a
// node that syncs (NodeConfig.Sync).
func (n *Node) SendEphemeral(body []byte) (mvds.MessageID, error) {
	if n.sync == nil {
		return mvds.MessageID{}, fmt.Errorf("remotelog: send ephemeral: this node does not sync over MVDS: start it with sync ('rlog run --sync')")
	}
	m := mvds.Message{GroupID: n.sync.group, Timestamp: time.Now().Unix(), Body: body, Metadata: &mvds.Metadata{Ephemeral: true}}
	var id mvds.MessageID
	n.sync.runner.Do(func(mn *mvds.Node) { id = mn.Send(m) })
	n.srv.AnnounceEphemeral(ephemeralEvent(n.sync.id(), m))
	return id, nil
}
