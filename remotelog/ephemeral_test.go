package remotelog_test

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"rlog/remotelog"
)

// TestEphemeralToFollowers: a follower connected to a node's gateway hears
// the ephemeral messages of the group the node receives from a peer and
// those it sends, once each, marked with the peer they came from; one
// that connects later hears none sent before (never retransmitted), and
// none reaches a log.
func TestEphemeralToFollowers(t *testing.T) {
	ctx := context.Background()
	g := remotelog.Group{Name: "room"}
	cfg := func(serve string) remotelog.NodeConfig {
		return remotelog.NodeConfig{Serve: serve, Sync: &remotelog.SyncConfig{Group: g.ID(), Epoch: 20 * time.Millisecond}}
	}
	a := startNode(t, openNewRepo(t, "a"), cfg(""))
	rb := openNewRepo(t, "b")
	// The gateway serves the embedded store once something is published.
	publishHello(t, rb, g.ID())
	b := startNode(t, rb, cfg("127.0.0.1:0"))
	addr := func(n *remotelog.Node) string {
		st, err := n.SyncStatus()
		if err != nil {
			t.Fatal(err)
		}
		return st.Addrs[0] + "/p2p/" + st.ID
	}
	if _, err := a.AddPeer(ctx, addr(b)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPeer(ctx, addr(a)); err != nil {
		t.Fatal(err)
	}
	follow := func() <-chan remotelog.EphemeralEvent {
		t.Helper()
		src, err := remotelog.OpenSource(ctx, "http://"+b.GatewayAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		gs, ok := src.(interface {
			Ephemeral(context.Context, []byte) (<-chan remotelog.EphemeralEvent, error)
		})
		if !ok {
			t.Fatalf("a gateway source (%T) cannot follow ephemeral messages", src)
		}
		fctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		ch, err := gs.Ephemeral(fctx, g.ID())
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	next := func(ch <-chan remotelog.EphemeralEvent, body, from string) {
		t.Helper()
		select {
		case ev := <-ch:
			if string(ev.Body) != body || ev.From != from || ev.Group != hex.EncodeToString(g.ID()) {
				t.Fatalf("followed %q from %s in %.8s, want %q from %s", ev.Body, ev.From, ev.Group, body, from)
			}
		case <-time.After(patience):
			t.Fatalf("never followed %q", body)
		}
	}
	first := follow()
	// a's typing goes to b over MVDS, then to b's follower.
	if _, err := a.SendEphemeral([]byte("typing")); err != nil {
		t.Fatal(err)
	}
	next(first, "typing", a.PeerID())
	// b's own presence goes to its follower too.
	if _, err := b.SendEphemeral([]byte("here")); err != nil {
		t.Fatal(err)
	}
	next(first, "here", b.PeerID())
	// A follower from now on hears only what comes from now on.
	second := follow()
	if _, err := a.SendEphemeral([]byte("typing again")); err != nil {
		t.Fatal(err)
	}
	next(second, "typing again", a.PeerID())
	next(first, "typing again", a.PeerID())
	select {
	case ev := <-first:
		t.Fatalf("followed %q twice", ev.Body)
	default:
	}
	if na, nb := a.Writer().Len(), b.Writer().Len(); na != 0 || nb != 1 {
		t.Fatalf("the logs hold %d and %d messages, want 0 and 1 (an ephemeral one is never logged)", na, nb)
	}
}

// TestEphemeralWithoutSync: the gateway of a node that does not sync over
// MVDS (rlog serve, a keeper) has no ephemeral messages: it says so (404)
// rather than stream none, so that a follower does not claim to follow them.
func TestEphemeralWithoutSync(t *testing.T) {
	ctx := context.Background()
	r := openNewRepo(t, "a")
	publishHello(t, r, nil)
	n := startNode(t, r, remotelog.NodeConfig{Serve: "127.0.0.1:0"})
	src, err := remotelog.OpenSource(ctx, "http://"+n.GatewayAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	gs := src.(interface {
		Ephemeral(context.Context, []byte) (<-chan remotelog.EphemeralEvent, error)
	})
	if ch, err := gs.Ephemeral(ctx, remotelog.Group{Name: "room"}.ID()); err == nil {
		t.Fatalf("a gateway without sync streams ephemeral messages (%v), want an error", ch)
	}
}

// publishHello appends "hello" in group to repo's log and publishes it.
func publishHello(t *testing.T, repo *remotelog.Repo, group []byte) {
	t.Helper()
	ctx := context.Background()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append(ctx, group, [][]byte{[]byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}
