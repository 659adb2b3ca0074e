package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"rlog/mvds"
	"rlog/remotelog"
)

func openNewRepo(t *testing.T, name string) *remotelog.Repo {
	t.Helper()
	return openNewRepoWith(t, name, func(*remotelog.Config) {})
}

// openNewRepoWith opens a new repo made with the paged preset changed by
// edit; it is closed when the test ends.
func openNewRepoWith(t testing.TB, name string, edit func(*remotelog.Config)) *remotelog.Repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	cfg, err := remotelog.DefaultConfig("paged")
	if err != nil {
		t.Fatal(err)
	}
	edit(&cfg)
	if _, err := remotelog.Init(dir, cfg); err != nil {
		t.Fatal(err)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	return repo
}

func startNode(t *testing.T, repo *remotelog.Repo, cfg remotelog.NodeConfig) *remotelog.Node {
	t.Helper()
	n, err := remotelog.StartNode(context.Background(), repo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestNodeSyncPeers: a peer added at runtime is synced with at once and
// kept in the repo's config; paused, it stays paused across a restart.
func TestNodeSyncPeers(t *testing.T) {
	ctx := context.Background()
	ra, rb := openNewRepo(t, "a"), openNewRepo(t, "b")
	got := make(chan mvds.Message, 16)
	sync := func(deliver func(mvds.Message)) *remotelog.SyncConfig {
		return &remotelog.SyncConfig{Epoch: 20 * time.Millisecond, Deliver: deliver}
	}
	a := startNode(t, ra, remotelog.NodeConfig{Sync: sync(nil)})
	b := startNode(t, rb, remotelog.NodeConfig{Sync: sync(func(m mvds.Message) { got <- m })})
	st, err := a.SyncStatus()
	if err != nil {
		t.Fatal(err)
	}
	addr := st.Addrs[0]
	if _, err := b.AddPeer(ctx, addr); err != nil {
		t.Fatal(err)
	}
	// b's message makes b known to a, which syncs with a peer that sends.
	if _, err := b.Append(ctx, nil, [][]byte{[]byte("from b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, nil, [][]byte{[]byte("hi")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Body) != "hi" {
			t.Fatalf("b got %q", m.Body)
		}
	case <-time.After(patience):
		t.Fatal("b never got a's message")
	}
	cfg, err := remotelog.LoadConfig(rb.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Peers) != 1 || cfg.Peers[0].Addr != addr {
		t.Fatalf("config peers %+v, want %s", cfg.Peers, addr)
	}
	if _, err := b.PausePeer(a.PeerID()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PausePeer("12D3KooWnobody"); err == nil {
		t.Error("paused a peer that is not in the config")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startNode(t, rb, remotelog.NodeConfig{Sync: sync(nil)})
	st, err = b2.SyncStatus()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 || st.Peers[0].ID != a.PeerID() || !st.Peers[0].Paused {
		t.Fatalf("after a restart, peers %+v: want %s paused", st.Peers, a.PeerID())
	}
	if _, err := b2.RemovePeer(a.PeerID()); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := remotelog.LoadConfig(rb.Dir); len(cfg.Peers) != 0 {
		t.Errorf("removed peer still in the config: %+v", cfg.Peers)
	}
	if st, _ := b2.SyncStatus(); len(st.Peers) != 0 {
		t.Errorf("removed peer still synced with: %+v", st.Peers)
	}
}

// TestNodeRunsCommands: a command line sent to the control socket runs in
// the node; its output streams back and its exit code is returned.
func TestNodeRunsCommands(t *testing.T) {
	repo := openNewRepo(t, "w")
	startNode(t, repo, remotelog.NodeConfig{Commands: func(ctx context.Context, n *remotelog.Node, req remotelog.CommandRequest, stdout, stderr io.Writer) int {
		fmt.Fprintf(stdout, "ran %v in %s\n", req.Args, n.Repo().Dir)
		fmt.Fprintln(stderr, "note")
		return 3
	}})
	c, err := remotelog.DialControl(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code, err := c.Run(context.Background(), remotelog.CommandRequest{Args: []string{"log", "--json"}}, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 || out.String() != fmt.Sprintf("ran [log --json] in %s\n", repo.Dir) || errb.String() != "note\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	if _, err := c.ChangePeer(context.Background(), remotelog.PeerChange{Op: "frob", Peer: "x"}); err == nil {
		t.Error("an unknown peer change was taken")
	}
}

// TestNodeReplacesStaleSocket: the socket of a node that was killed (the
// file left, nobody listening) is replaced by the next node.
func TestNodeReplacesStaleSocket(t *testing.T) {
	repo := openNewRepo(t, "w")
	ln, err := remotelog.ListenControl(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // as a killed process leaves it
	if c, err := net.Dial("unix", remotelog.ControlSocket(repo.Dir)); err == nil {
		c.Close()
		t.Fatal("the stale socket answers")
	}
	startNode(t, repo, remotelog.NodeConfig{})
	c, err := remotelog.DialControl(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Append(context.Background(), repo.DefaultGroup(), [][]byte{[]byte("x")})
	if err != nil || len(res) != 1 {
		t.Fatalf("append through the new node: %v %v", res, err)
	}
	st, err := c.NodeStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 1 || st.Published != 0 || st.Name != repo.Name().String() || st.Sync != nil {
		t.Errorf("node status %+v", st)
	}
}

// TestNodeEphemeral: an ephemeral message reaches a peer online, once,
// marked ephemeral, and goes into neither log.
func TestNodeEphemeral(t *testing.T) {
	ctx := context.Background()
	ra, rb := openNewRepo(t, "a"), openNewRepo(t, "b")
	got := make(chan mvds.Message, 16)
	cfg := func(deliver func(mvds.Message)) remotelog.NodeConfig {
		return remotelog.NodeConfig{Sync: &remotelog.SyncConfig{Epoch: 20 * time.Millisecond, Deliver: deliver}}
	}
	a := startNode(t, ra, cfg(nil))
	b := startNode(t, rb, cfg(func(m mvds.Message) { got <- m }))
	st, err := a.SyncStatus()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPeer(ctx, st.Addrs[0]); err != nil {
		t.Fatal(err)
	}
	// b's message makes b known to a; a's logged message shows the link is up.
	if _, err := b.Append(ctx, nil, [][]byte{[]byte("from b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, nil, [][]byte{[]byte("hi")}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"hi": false, "typing": false}
	sent := false
	deadline := time.After(patience)
	for !want["hi"] || !want["typing"] {
		select {
		case m := <-got:
			if _, ok := want[string(m.Body)]; !ok || want[string(m.Body)] {
				t.Fatalf("b got %q (again?)", m.Body)
			}
			want[string(m.Body)] = true
			if string(m.Body) == "typing" && !m.Ephemeral() {
				t.Fatal("the ephemeral message arrived without its mark")
			}
			if string(m.Body) == "hi" && !sent {
				if _, err := a.SendEphemeral([]byte("typing")); err != nil {
					t.Fatal(err)
				}
				sent = true
			}
		case <-deadline:
			t.Fatalf("b got %v", want)
		}
	}
	if na, nb := a.Writer().Len(), b.Writer().Len(); na != 1 || nb != 1 {
		t.Fatalf("the logs hold %d and %d messages, want 1 each (an ephemeral one is never logged)", na, nb)
	}
}

// TestNodeFollow: a follower bound to a context is one of the node's
// subscriptions while it runs (a second one of the log is refused), and
// ends with nil when its context ends, having saved how far it read.
func TestNodeFollow(t *testing.T) {
	ctx := context.Background()
	rw, rr := openNewRepo(t, "w"), openNewRepo(t, "r")
	w := startNode(t, rw, remotelog.NodeConfig{})
	if _, err := w.Append(ctx, nil, [][]byte{[]byte("one"), []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	r := startNode(t, rr, remotelog.NodeConfig{})
	name := rw.Name()
	opts := remotelog.FollowOptions{MinInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond}
	fctx, stop := context.WithCancel(ctx)
	got := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		done <- r.Follow(fctx, name, rw, opts, func(m remotelog.Message) error { got <- string(m.Body); return nil })
	}()
	for _, want := range []string{"one", "two"} {
		select {
		case b := <-got:
			if b != want {
				t.Fatalf("delivered %q, want %q", b, want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%q not delivered", want)
		}
	}
	if st := r.Status(); len(st.Subscriptions) != 1 || st.Subscriptions[0].Name != name.String() {
		t.Fatalf("status lists %+v, want the follower", st.Subscriptions)
	}
	if err := r.Subscribe(name, rw, opts, func(remotelog.Message) error { return nil }); err == nil {
		t.Fatal("a second subscription to the log was taken")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Follow ended by its context: %v", err)
	}
	if st := r.Status(); len(st.Subscriptions) != 0 {
		t.Fatalf("status lists %+v after the follower ended", st.Subscriptions)
	}
	if cur, err := rr.Cursor(name); err != nil || cur.Seq != 2 {
		t.Fatalf("cursor %+v, %v: want seq 2", cur, err)
	}
}

// TestNodeAppendSealsAPrivateLog: a Go program appending through the node
// of a private repo writes sealed bodies: the text is in no block of the
// repo's store, a reader without the key gets ErrPrivate, and one with the
// key reads it back; a rekey takes effect at the next append.
func TestNodeAppendSealsAPrivateLog(t *testing.T) {
	ctx := context.Background()
	rw := openNewRepo(t, "w")
	k, err := remotelog.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	if err := remotelog.SaveKeyring(rw.Dir, rw.Name(), k); err != nil {
		t.Fatal(err)
	}
	w := startNode(t, rw, remotelog.NodeConfig{})
	marker := []byte("node-append-marker-5c1e")
	if _, err := w.Append(ctx, nil, [][]byte{marker}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rekey(); err != nil {
		t.Fatal(err)
	}
	if err := remotelog.SaveKeyring(rw.Dir, rw.Name(), k); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AppendMeta(ctx, nil, nil, [][]byte{append(marker, " after rekey"...)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	storeBlocks(t, rw, func(c cid.Cid, b []byte) {
		if bytes.Contains(b, marker) {
			t.Fatalf("block %s holds the appended text: the body was not sealed", c)
		}
	})
	read := func(k *remotelog.Keyring) ([]string, error) {
		var got []string
		_, _, err := remotelog.CatchUp(ctx, rw, rw.Name(), remotelog.Cursor{}, remotelog.ReadOptions{},
			remotelog.Opening(k, func(m remotelog.Message) error { got = append(got, string(m.Body)); return nil }))
		return got, err
	}
	if got, err := read(nil); !errors.Is(err, remotelog.ErrPrivate) || len(got) != 0 {
		t.Fatalf("read without the key: %q, %v; want nothing and ErrPrivate", got, err)
	}
	got, err := read(k)
	if want := []string{string(marker), string(marker) + " after rekey"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("read with the key: %q, %v; want %q", got, err, want)
	}
}
