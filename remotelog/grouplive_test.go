package remotelog_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"rlog/cas"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/remotelog"
)

// TestGroupLiveAndLogs: a node that syncs a group's MVDS group with its
// members online and follows the members' logs delivers every message
// once, after its parents, whichever way it came first. Three writers run
// nodes over libp2p publishing to one store and name system; the reader's
// node syncs with two of them from the start:
//   - a1 comes over MVDS before a's log has it; a's log gives it later;
//   - b1 names a2, which a logs without sending over MVDS: b1 waits until
//     a's log gives a2;
//   - c's messages come from c's log first; c is then added as a peer and
//     sends them over MVDS: they are not delivered again;
//   - a restarted subscription delivers nothing old.
func TestGroupLiveAndLogs(t *testing.T) {
	ctx := context.Background()
	sh := shared{store: cas.NewMemory(), names: namesys.NewMemory()}
	g := remotelog.Group{Name: "room"}
	backend := &remotelog.Backend{Store: sh.store, Names: sh.names}
	writer := func(name string) *remotelog.Node {
		return startNode(t, openNewRepo(t, name), remotelog.NodeConfig{
			Backend: backend, Sync: &remotelog.SyncConfig{Group: g.ID(), Epoch: 20 * time.Millisecond},
		})
	}
	a, b, c := writer("a"), writer("b"), writer("c")
	for _, w := range []*remotelog.Node{a, b, c} {
		g.Members = append(g.Members, w.Repo().Name().String())
	}
	var mu sync.Mutex
	var fromMVDS []string // what the reader's MVDS delivered
	repo := openNewRepo(t, "reader")
	store := remotelog.Groups(repo.Dir)
	if err := store.Create(g.Name); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*remotelog.Node{a, b, c} {
		if err := store.AddMember(g.Name, w.Repo().Name()); err != nil {
			t.Fatal(err)
		}
	}
	r := startNode(t, repo, remotelog.NodeConfig{Sync: &remotelog.SyncConfig{Group: g.ID(), Epoch: 20 * time.Millisecond,
		Deliver: func(m mvds.Message) {
			mu.Lock()
			defer mu.Unlock()
			fromMVDS = append(fromMVDS, string(m.Body))
		}}})
	addr := func(n *remotelog.Node) string {
		st, err := n.SyncStatus()
		if err != nil {
			t.Fatal(err)
		}
		return st.Addrs[0] + "/p2p/" + st.ID
	}
	link := func(w *remotelog.Node) {
		t.Helper()
		if _, err := r.AddPeer(ctx, addr(w)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.AddPeer(ctx, addr(r)); err != nil {
			t.Fatal(err)
		}
	}
	link(a)
	link(b)
	say := func(w *remotelog.Node, body string, overMVDS bool, parents ...mvds.MessageID) mvds.MessageID {
		t.Helper()
		md := &mvds.Metadata{}
		for _, p := range parents {
			md.Parents = append(md.Parents, slices.Clone(p[:]))
		}
		var out []remotelog.Appended
		var err error
		if overMVDS {
			out, err = w.AppendMeta(ctx, g.ID(), md, [][]byte{[]byte(body)})
		} else {
			err = w.WithWriter(func(wr *remotelog.Writer) error {
				out, err = wr.AppendMeta(ctx, g.ID(), md, [][]byte{[]byte(body)})
				return err
			})
		}
		if err != nil {
			t.Fatal(err)
		}
		return out[0].ID
	}
	publish := func(w *remotelog.Node) {
		t.Helper()
		if _, err := w.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	type delivered struct {
		gm   remotelog.GroupMessage
		body string
	}
	got := make(chan delivered, 64)
	subscribe := func() (stop func()) {
		sctx, cancel := context.WithCancel(ctx)
		done, errp, err := r.SubscribeGroup(sctx, g.Name, sh, remotelog.FollowGroupOptions{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond},
			func(gm remotelog.GroupMessage) error {
				got <- delivered{gm, string(gm.Message.Body)}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return func() {
			cancel()
			<-done
			if *errp != nil {
				t.Fatal(*errp)
			}
		}
	}
	seen := map[mvds.MessageID]string{}
	next := func(want string) remotelog.GroupMessage {
		t.Helper()
		select {
		case d := <-got:
			if d.body != want {
				t.Fatalf("delivered %q, want %q", d.body, want)
			}
			if was, ok := seen[d.gm.ID]; ok {
				t.Fatalf("%q delivered twice (first as %q)", d.body, was)
			}
			for _, p := range d.gm.Parents {
				if _, ok := seen[p]; !ok {
					t.Fatalf("%q delivered before its parent %.8s", d.body, p)
				}
			}
			seen[d.gm.ID] = d.body
			return d.gm
		case <-time.After(patience):
			t.Fatalf("never delivered %q", want)
		}
		return remotelog.GroupMessage{}
	}
	noMore := func(when string) {
		t.Helper()
		select {
		case d := <-got:
			t.Fatalf("%s%q delivered again", when, d.body)
		default:
		}
	}
	stop := subscribe()
	// a1 over MVDS only: a has not published.
	a1 := say(a, "a1", true)
	if gm := next("a1"); gm.Author != 0 {
		t.Fatalf("a1 came from member %d, want 0 (a)", gm.Author)
	}
	// a2 into a's log only; b1 names it and comes over MVDS first.
	a2 := say(a, "a2", false, a1)
	say(b, "b1", true, a2)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return slices.Contains(fromMVDS, "b1") })
	publish(a) // a1 (again) and a2 from the log: a2, then b1 released
	next("a2")
	next("b1")
	publish(b)
	// c talks before the reader syncs with it: its log comes first.
	c1 := say(c, "c1", true)
	say(c, "c2", true, c1)
	publish(c)
	next("c1")
	next("c2")
	link(c)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return slices.Contains(fromMVDS, "c2") })
	// A marker after c's copies: the group's reader has taken them when
	// it delivers the marker (one queue, in order).
	say(a, "a3", true, a2)
	next("a3")
	stop()
	noMore("")
	// Restarted: everything is in the logs now, and nothing is new.
	publish(a)
	stop = subscribe()
	say(b, "b2", true)
	next("b2")
	stop()
	noMore("after a restart, ")
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(fromMVDS, "a1") || !slices.Contains(fromMVDS, "c1") {
		t.Fatalf("the reader's MVDS delivered %q: the test did not bring both ways", fromMVDS)
	}
}

// waitFor waits until ok, for a generous while.
func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("gave up waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
