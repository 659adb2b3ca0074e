package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"rlog/internal/atomicfile"
	"rlog/mvds"
	"rlog/remotelog"
)

// syncStatus is what `rlog sync status` prints.
type syncStatus struct {
	ID      string         `json:"id"`
	Addrs   []string       `json:"addrs"`
	Group   string         `json:"group"`
	Epoch   int64          `json:"epoch"`
	Peers   []peerStatus   `json:"peers"`
	Records []recordStatus `json:"records,omitempty"`
	Pending map[string]int `json:"pending_records_per_peer"`
}

// recordStatus is one thing the node still owes a peer.
type recordStatus struct {
	Type      string `json:"type"` // message, offer or request
	Peer      string `json:"peer"`
	ID        string `json:"id"` // message id, hex
	Group     string `json:"group"`
	SendCount int    `json:"send_count"`
	SendEpoch int64  `json:"send_epoch"`
}

type peerStatus struct {
	ID        string `json:"id"`
	Connected bool   `json:"connected"`
}

func (a *app) syncCmd() *cobra.Command {
	var listen, groupHex, groupName, mode, from string
	var logEvery time.Duration
	var peers []string
	var asJSON bool
	var wait time.Duration
	var epoch time.Duration
	cmd := &cobra.Command{
		Use:   "sync --listen MULTIADDR [--peer MULTIADDR/p2p/ID ...]",
		Short: "Sync messages directly with peers that are online now (MVDS)",
		Long: `Run an MVDS node on libp2p (protocol /rlog/mvds/1.0.0). Its identity is this repo's
key, so its peer id names the same key as its log. It sends every message of the group
in the local log to its peers, and everything appended while it runs ('rlog append' in
this repo goes through it), retransmitting until each peer acknowledges; it prints what
peers send (--json: the lines of 'rlog fetch --json'), each message once, also across
restarts: its state is kept in the repo. Peers that already have a message (from the
remote log) acknowledge it, so it is not sent again.

Each side names the other with --peer MULTIADDR/p2p/PEERID; 'rlog id' prints the peer
id. --from also reads the peers' remote logs (a peer id names the same key as its log),
so messages read there are acknowledged, never delivered twice.

'rlog sync status' (in the same repo, while it runs) shows its peers and what is still
owed to each.`,
		Example: `  rlog id --repo ~/b        # B's peer id, 12D3KooW...
  rlog sync --listen /ip4/0.0.0.0/tcp/4001 --peer /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW... --group-name room
  rlog append --group-name room "hi"      # while sync runs: logged and sent
  rlog sync status --wait 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := parseMode(mode)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			repo, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			defer repo.Close()
			group, err := parseGroup(groupHex, groupName, repo.DefaultGroup())
			if err != nil {
				return err
			}
			b, release, err := a.backend(ctx, repo)
			if err != nil {
				return err
			}
			defer release()
			w, err := repo.Writer(b, nil)
			if err != nil {
				return err
			}
			defer w.Close()
			host, err := mvds.NewP2P(repo.Key(), listen)
			if err != nil {
				return err
			}
			defer host.Close()

			// The node, restored from the repo when it ran before.
			statePath := filepath.Join(repo.Dir, "mvds", hex.EncodeToString(group)+".json")
			cfg := mvds.Config{ID: host.ID(), Mode: m}
			node := mvds.NewNode(cfg)
			if raw, err := os.ReadFile(statePath); err == nil {
				var st mvds.State
				if err := json.Unmarshal(raw, &st); err != nil {
					return fmt.Errorf("state %s: %w", statePath, err)
				}
				if node, err = mvds.RestoreNode(cfg, st); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(filepath.Dir(statePath), 0o755); err != nil {
				return err
			}
			// Every message of the group in the local log is offered to peers.
			if w.Len() > 0 {
				if err := w.Scan(1, w.Len(), func(m remotelog.Message) error {
					// A large message is too large for MVDS: peers read it from the log.
					if string(m.GroupID) == string(group) && !m.IsLarge() {
						node.Send(m.Message)
					}
					return nil
				}); err != nil {
					return err
				}
			}
			var outMu sync.Mutex
			out := &printer{w: a.stdout, asJSON: asJSON}
			runner := mvds.NewRunner(mvds.RunnerConfig{
				Node: node, Transport: host, Epoch: epoch,
				Save: func(st mvds.State) error {
					b, err := json.Marshal(st)
					if err != nil {
						return err
					}
					return atomicfile.Write(statePath, b, 0o644)
				},
				Deliver: func(msg mvds.Message) {
					outMu.Lock()
					defer outMu.Unlock()
					out.print(remotelog.Message{ID: msg.ID(), BodySize: uint64(len(msg.Body)), Message: msg})
				},
			})
			var peerIDs []mvds.PeerID
			for _, addr := range peers {
				pid, err := host.Connect(ctx, addr)
				if pid == "" {
					return usageError{err}
				}
				if err != nil {
					fmt.Fprintf(a.stderr, "peer %s not reachable yet (%v); MVDS retries\n", addr, err)
				}
				peerIDs = append(peerIDs, pid)
				runner.Do(func(n *mvds.Node) { n.AddPeer(group, pid) })
			}

			// Own the repo: appends from other rlog processes come here.
			srv := remotelog.NewServer(repo, w, nil)
			srv.OnAppend = func(out []remotelog.Appended) {
				runner.Do(func(n *mvds.Node) {
					for _, ap := range out {
						if string(ap.GroupID) == string(group) && !ap.IsLarge() {
							n.Send(ap.Message)
						}
					}
				})
			}
			srv.Status = func() any {
				st := syncStatus{ID: string(host.ID()), Addrs: host.Addrs(), Group: hex.EncodeToString(group), Pending: map[string]int{}}
				runner.Do(func(n *mvds.Node) {
					st.Epoch = n.Epoch()
					for _, p := range n.Peers(group) {
						st.Peers = append(st.Peers, peerStatus{ID: string(p), Connected: host.Connected(p)})
						st.Pending[string(p)] = 0
					}
					for _, r := range n.Records() {
						st.Records = append(st.Records, recordStatus{Type: strings.ToLower(r.Type.String()), Peer: string(r.Peer), ID: hex.EncodeToString(r.ID[:]),
							Group: hex.EncodeToString(r.Group), SendCount: r.SendCount, SendEpoch: r.SendEpoch})
						st.Pending[string(r.Peer)]++
					}
				})
				return st
			}
			cl, err := remotelog.ListenControl(repo.Dir)
			if err != nil {
				return err
			}
			defer os.Remove(remotelog.ControlSocket(repo.Dir))
			control := srv.ControlServer()
			go control.Serve(cl)
			defer control.Close()
			for _, addr := range host.Addrs() {
				fmt.Fprintf(a.stderr, "listening on %s\n", addr)
			}
			fmt.Fprintf(a.stderr, "syncing group %s with %s, %s mode\n", hex.EncodeToString(group)[:16], plural(len(peerIDs), "peer"), mode)
			if from != "" {
				go a.readPeerLogs(ctx, from, repo.Dir, group, peerIDs, runner, logEvery, func(msg mvds.Message) {
					outMu.Lock()
					defer outMu.Unlock()
					out.print(remotelog.Message{ID: msg.ID(), BodySize: uint64(len(msg.Body)), Message: msg})
				})
			}
			err = runner.Run(ctx, acceptPeers(ctx, host.Incoming(), runner, group, func(p mvds.PeerID) {
				fmt.Fprintf(a.stderr, "peer %s connected: syncing with it too\n", p)
			}))
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "/ip4/127.0.0.1/tcp/0", "libp2p listen multiaddr")
	f.StringSliceVar(&peers, "peer", nil, "a peer's multiaddr ending in /p2p/ID (repeatable)")
	f.StringVar(&groupHex, "group", "", "MVDS group id, hex (default: the repo's group)")
	f.StringVar(&groupName, "group-name", "", "MVDS group named by a text (SHA-256 of it)")
	f.StringVar(&mode, "mode", "batch", "batch or interactive")
	f.BoolVar(&asJSON, "json", false, "print received messages as JSON lines")
	f.DurationVar(&epoch, "epoch", 500*time.Millisecond, "length of an epoch")
	f.StringVar(&from, "from", "", "also read the peers' remote logs from here (a peer's id names its log), so messages already read are acknowledged, not delivered again")
	f.DurationVar(&logEvery, "log-interval", 10*time.Second, "how often to read the peers' remote logs (with --from)")
	a.apiFlagOn(cmd)
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the peers of the running sync node and what is owed to each",
		Long: `Ask the 'rlog sync' running in this repo (over its socket in the repo) for its state:
its peer id, the group it syncs, its epoch, and for each peer whether it is connected
and how many records (messages, offers, requests) it still owes that peer. A
record stays owed until the peer acknowledges it; MVDS retransmits it meanwhile.

--wait D waits up to D until nothing is owed to anyone (every peer has acknowledged
everything), then prints the status; it fails with exit 1 if something is still owed
after D. --json prints the status as one object (docs/CLI.md); records lists each
owed record.`,
		Example: `  rlog sync status
  rlog sync status --wait 30s     # e.g. before stopping sync
  rlog sync status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.repoDir()
			if err != nil {
				return err
			}
			owner, err := remotelog.DialControl(dir)
			if err != nil {
				return failf(err, "no 'rlog sync' runs in %s: start it first", dir)
			}
			var st syncStatus
			deadline := time.Now().Add(wait)
			for {
				st = syncStatus{} // each poll from scratch: absent fields are empty now
				if err := owner.Status(cmd.Context(), &st); err != nil {
					return err
				}
				if wait == 0 || len(st.Records) == 0 {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("still %s owed to peers after %s", plural(len(st.Records), "record"), wait)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
			if asJSON {
				return writeJSON(a.stdout, st)
			}
			fmt.Fprintf(a.stdout, "node      %s\ngroup     %s\nepoch     %d\n", st.ID, st.Group, st.Epoch)
			for _, p := range st.Peers {
				fmt.Fprintf(a.stdout, "peer      %s connected=%v pending=%d\n", p.ID, p.Connected, st.Pending[p.ID])
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	status.Flags().DurationVar(&wait, "wait", 0, "wait up to this long until every peer has acknowledged everything")
	cmd.AddCommand(status)
	return cmd
}

func (a *app) idCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print this repo's peer id (for sync --peer) and its log's name (for fetch)",
		Long: `Print the two names of this repo's key: its libp2p peer id (12D3KooW...), which peers
give to 'rlog sync --peer MULTIADDR/p2p/PEERID', and the IPNS name of its log (k51...),
which readers give to fetch, follow, keep and backup. Both name the same Ed25519 key.
--json prints {"peer_id": ..., "name": ...}.`,
		Example: `  rlog id
  rlog id --json
  rlog sync --peer /ip4/10.0.0.2/tcp/4001/p2p/$(rlog id --repo ~/b --json | jq -r .peer_id) ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.repoDir()
			if err != nil {
				return err
			}
			name, err := remotelog.ReadName(dir)
			if err != nil {
				return noRepo(dir, err)
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"peer_id": name.Peer().String(), "name": name.String()})
			}
			fmt.Fprintf(a.stdout, "peer id   %s\nlog name  %s\n", name.Peer(), name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print both names as JSON")
	return cmd
}

// acceptPeers passes packets on to the node, first adding a sender that is
// not yet a peer of group: a peer that connects to this node is synced with,
// as if both sides had named each other with --peer.
func acceptPeers(ctx context.Context, in <-chan mvds.Packet, runner *mvds.Runner, group []byte, added func(mvds.PeerID)) <-chan mvds.Packet {
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
			runner.Do(func(n *mvds.Node) {
				if !slices.Contains(n.Peers(group), pk.From) {
					n.AddPeer(group, pk.From)
					fresh = true
				}
			})
			if fresh {
				added(pk.From)
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
// its log) from src now and every interval: messages of the group the node
// does not have are delivered, once, and become known to the node, which
// then acknowledges them when the peer sends or offers them.
func (a *app) readPeerLogs(ctx context.Context, from, dir string, group []byte, peers []mvds.PeerID, runner *mvds.Runner, every time.Duration, deliver func(mvds.Message)) {
	src, err := remotelog.OpenSource(ctx, from)
	if err != nil {
		fmt.Fprintf(a.stderr, "remote logs: %v\n", err)
		return
	}
	defer src.Close()
	cursors := remotelog.SyncCursors(dir)
	for {
		for _, p := range peers {
			pid, err := peer.Decode(string(p))
			if err != nil {
				continue
			}
			name := ipns.NameFromPeer(pid)
			cur, _ := cursors.Get(name)
			next, _, err := remotelog.CatchUp(ctx, src, name, cur, remotelog.ReadOptions{}, func(m remotelog.Message) error {
				// A large message cannot travel over MVDS: it is read from
				// the log only.
				if string(m.GroupID) != string(group) || m.IsLarge() {
					return nil
				}
				fresh := false
				runner.Do(func(n *mvds.Node) {
					if !n.Has(m.ID) {
						n.Have(m.Message)
						fresh = true
					}
				})
				if fresh {
					deliver(m.Message)
				}
				return nil
			})
			if next != cur {
				cursors.Save(name, next)
			}
			if err != nil && !errors.Is(err, remotelog.ErrNoLog) && ctx.Err() == nil {
				fmt.Fprintf(a.stderr, "remote log of %s: %v\n", p, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
