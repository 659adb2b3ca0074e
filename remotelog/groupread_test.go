package remotelog_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/cas"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/remotelog"
)

// shared is one store and one name system many writers publish to.
type shared struct {
	store *cas.Memory
	names *namesys.Memory
}

func (s shared) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return s.store.Get(ctx, c) }
func (s shared) Resolve(ctx context.Context, n ipns.Name) ([]byte, error) {
	return s.names.Resolve(ctx, n)
}

// writer opens a writer publishing to s, its key made from seed.
func (s shared) writer(t *testing.T, seed byte, clk *clock) *remotelog.Writer {
	t.Helper()
	seedKey := make([]byte, 32)
	seedKey[0] = seed
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seedKey))
	if err != nil {
		t.Fatal(err)
	}
	w, err := remotelog.OpenWriter(remotelog.WriterConfig{
		Dir: t.TempDir(), Key: sk, Store: s.store, Publisher: s.names, Resolver: s.names,
		Policy: small(t), Lifetime: testLifetime, TTL: time.Minute, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// groupWriter is a member: its writer, and its own view of the group (a
// group store with its cursors and heads).
type groupWriter struct {
	w     *remotelog.Writer
	store remotelog.GroupStore
	heads *remotelog.Heads
}

// TestGroupPartitioned: three writers append concurrently in a group while
// partitioned and rejoined, each reading the others it can reach through
// CatchUpGroup and naming its heads as parents. Two readers then deliver
// every message once, in the same order, parents first; a reader restarted
// resumes from its cursors and delivers only what is new.
func TestGroupPartitioned(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx := context.Background()
	sh := shared{store: cas.NewMemory(), names: namesys.NewMemory()}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := remotelog.Group{Name: "room"}
	// Members are read in parallel: a fixed clock, safe to share.
	readNow := func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }
	ws := make([]*groupWriter, 3)
	for i := range ws {
		w := sh.writer(t, byte(i+1), clk)
		ws[i] = &groupWriter{w: w, store: remotelog.Groups(t.TempDir()), heads: remotelog.NewHeads(nil)}
		g.Members = append(g.Members, w.Name().String())
	}
	// reach reads, for writer i, the members in its partition.
	reach := func(gw *groupWriter, in []int) {
		sub := remotelog.Group{Name: g.Name}
		for _, j := range in {
			sub.Members = append(sub.Members, g.Members[j])
		}
		_, err := remotelog.CatchUpGroup(ctx, sh, sub, gw.store, remotelog.GroupReadOptions{ReadOptions: remotelog.ReadOptions{Now: readNow}}, func(gm remotelog.GroupMessage) error {
			gw.heads.Observe(sub.Members[gm.Author], gm.ID, gm.Parents)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	published := make([]bool, 3)
	total := 0
	part := []int{0, 0, 1}
	for step := 0; step < 60; step++ {
		if step%20 == 0 {
			part = []int{rng.IntN(2), rng.IntN(2), rng.IntN(2)}
		}
		if step >= 50 {
			part = []int{0, 0, 0} // rejoined
		}
		i := rng.IntN(3)
		gw := ws[i]
		var in []int
		for j := range ws {
			if part[j] == part[i] && published[j] {
				in = append(in, j)
			}
		}
		reach(gw, in)
		md := &mvds.Metadata{}
		for _, h := range gw.heads.List() {
			md.Parents = append(md.Parents, slices.Clone(h[:]))
		}
		out, err := gw.w.AppendMeta(ctx, g.ID(), md, [][]byte{[]byte(fmt.Sprintf("w%d step %d", i, step))})
		if err != nil {
			t.Fatal(err)
		}
		gw.heads.Observe(g.Members[i], out[0].ID, nil)
		if _, err := gw.w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		published[i] = true
		total++
	}
	readAll := func(store remotelog.GroupStore) []remotelog.GroupMessage {
		var got []remotelog.GroupMessage
		st, err := remotelog.CatchUpGroup(ctx, sh, g, store, remotelog.GroupReadOptions{ReadOptions: remotelog.ReadOptions{Now: readNow}}, func(gm remotelog.GroupMessage) error {
			got = append(got, gm)
			return nil
		})
		if err != nil || len(st.Waiting) > 0 {
			t.Fatalf("read the group: %v, waiting %v", err, st.Waiting)
		}
		return got
	}
	checkOrder := func(got []remotelog.GroupMessage, before map[mvds.MessageID]bool) {
		t.Helper()
		seen := map[mvds.MessageID]bool{}
		for id := range before {
			seen[id] = true
		}
		for _, gm := range got {
			if seen[gm.ID] {
				t.Fatalf("seed %d: %.8s delivered twice", seed, gm.ID)
			}
			for _, p := range gm.Parents {
				if !seen[p] {
					t.Fatalf("seed %d: %.8s delivered before its parent %.8s", seed, gm.ID, p)
				}
			}
			seen[gm.ID] = true
		}
	}
	r1, r2 := remotelog.Groups(t.TempDir()), remotelog.Groups(t.TempDir())
	a, b := readAll(r1), readAll(r2)
	if len(a) != total {
		t.Fatalf("seed %d: delivered %d of %d", seed, len(a), total)
	}
	checkOrder(a, nil)
	for k := range a {
		if a[k].ID != b[k].ID {
			t.Fatalf("seed %d: readers differ at %d", seed, k)
		}
	}
	// Restarted (a new call, the same store): only what is new.
	if again := readAll(r1); len(again) != 0 {
		t.Fatalf("seed %d: a second read delivered %d old messages", seed, len(again))
	}
	gw := ws[0]
	reach(gw, []int{0, 1, 2})
	md := &mvds.Metadata{}
	for _, h := range gw.heads.List() {
		md.Parents = append(md.Parents, slices.Clone(h[:]))
	}
	if _, err := gw.w.AppendMeta(ctx, g.ID(), md, [][]byte{[]byte("late")}); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	before := map[mvds.MessageID]bool{}
	for _, gm := range a {
		before[gm.ID] = true
	}
	late := readAll(r1)
	if len(late) != 1 || string(late[0].Message.Body) != "late" || len(late[0].Parents) == 0 {
		t.Fatalf("after a restart: %d messages, want the late one naming its parents", len(late))
	}
	checkOrder(late, before)

	// A member whose log changed under the reader's cursor (a fork) is
	// reported and not merged past it; the others are.
	r3 := remotelog.Groups(t.TempDir())
	name0, _ := remotelog.ParseName(g.Members[0])
	forged := remotelog.Cursor{Seq: 1, ID: mvds.MessageID{1}}
	if err := r3.Cursors(g.Name).Save(name0, forged); err != nil {
		t.Fatal(err)
	}
	var got []remotelog.GroupMessage
	st, err := remotelog.CatchUpGroup(ctx, sh, g, r3, remotelog.GroupReadOptions{ReadOptions: remotelog.ReadOptions{Now: readNow}}, func(gm remotelog.GroupMessage) error {
		got = append(got, gm)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(st.Errors[0], remotelog.ErrFork) {
		t.Fatalf("member 0's fork not reported: %v", st.Errors[0])
	}
	for _, gm := range got {
		if gm.Author == 0 {
			t.Fatal("a forked member's message was merged")
		}
	}
	if c, _ := r3.Cursors(g.Name).Get(name0); c != forged {
		t.Fatalf("the forked member's cursor moved to %+v", c)
	}
}

// TestNodeSubscribeGroup: a node subscribed to a group kept in its repo
// delivers the members' messages merged, then what they publish later,
// and keeps the group's heads.
func TestNodeSubscribeGroup(t *testing.T) {
	ctx := context.Background()
	sh := shared{store: cas.NewMemory(), names: namesys.NewMemory()}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	repo := openNewRepo(t, "reader")
	store := remotelog.Groups(repo.Dir)
	if err := store.Create("room"); err != nil {
		t.Fatal(err)
	}
	g := remotelog.Group{Name: "room"}
	var ws []*remotelog.Writer
	for i := 0; i < 2; i++ {
		w := sh.writer(t, byte(i+10), clk)
		if err := store.AddMember("room", w.Name()); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	var mu sync.Mutex // guards clk: writers append while the node reads
	say := func(w *remotelog.Writer, body string, parents ...mvds.MessageID) mvds.MessageID {
		mu.Lock()
		defer mu.Unlock()
		md := &mvds.Metadata{}
		for _, p := range parents {
			md.Parents = append(md.Parents, slices.Clone(p[:]))
		}
		out, err := w.AppendMeta(ctx, g.ID(), md, [][]byte{[]byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		return out[0].ID
	}
	a1 := say(ws[0], "a1")
	say(ws[1], "b1", a1)
	n := startNode(t, repo, remotelog.NodeConfig{})
	got := make(chan string, 16)
	readNow := func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }
	sctx, cancel := context.WithCancel(ctx)
	done, errp, err := n.SubscribeGroup(sctx, "room", sh, remotelog.FollowGroupOptions{
		GroupReadOptions: remotelog.GroupReadOptions{ReadOptions: remotelog.ReadOptions{Now: readNow}},
		MinInterval:      5 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
	}, func(gm remotelog.GroupMessage) error {
		got <- string(gm.Message.Body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	next := func(want string) {
		t.Helper()
		select {
		case b := <-got:
			if b != want {
				t.Fatalf("delivered %q, want %q", b, want)
			}
		case <-time.After(patience):
			t.Fatalf("never delivered %q", want)
		}
	}
	next("a1")
	next("b1")
	say(ws[0], "a2")
	next("a2")
	cancel()
	<-done
	if *errp != nil {
		t.Fatal(*errp)
	}
	saved, err := store.Get("room")
	if err != nil || len(saved.Heads) == 0 {
		t.Fatalf("the group's heads were not kept: %+v, %v", saved, err)
	}
}
