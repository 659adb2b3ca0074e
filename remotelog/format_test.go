package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

// TestMixedFormats: a log written in v1, then by a writer of v2 on the same
// repo, then by one of v3: its old pages stay v1, its new pages are v2, its
// head v3, and its index (in the head's window node) lists both. Readers from scratch, from inside the v1 part, from inside
// the v2 part and exactly at the boundary read every message once, and
// Check finds nothing.
func TestMixedFormats(t *testing.T) {
	pol := small(t)
	pol.Format = pager.V1
	w := newWorld(t, pol)
	w.appendN(t, 0, 95, 0) // pages 0..8 sealed, page 9 open
	if pg := page(t, w, w.publish(t).Head); pg.V() != pager.V1 {
		t.Fatalf("head written as v%d", pg.V())
	}
	w.cfg.Policy.Format = pager.Version
	w.reopen(t)
	w.appendN(t, 95, 50, 0)
	if pg := page(t, w, w.publish(t).Head); pg.V() != pager.Version || len(pg.Index) == 0 {
		t.Fatalf("head after the switch to v2: v%d, %d index links", pg.V(), len(pg.Index))
	}
	w.cfg.Policy.Format = 0 // the default: v3
	w.reopen(t)
	w.appendN(t, 145, 50, 0)
	res := w.publish(t)
	hp := page(t, w, res.Head)
	if hp.V() != pager.V3 || len(hp.Index) == 0 || !hp.Node.Defined() {
		t.Fatalf("head after the switch to v3: v%d, %d index links", hp.V(), len(hp.Index))
	}
	ix := index(t, w, hp.Index[0].Cid)
	if first := page(t, w, ix.Pages[0].Cid); first.V() != pager.V1 {
		t.Fatalf("page 0 rewritten as v%d", first.V())
	}
	if last := page(t, w, ix.Pages[len(ix.Pages)-1].Cid); last.V() != pager.Version {
		t.Fatalf("a page sealed after the switch is v%d", last.V())
	}
	all, _, _, err := read(t, w, w, remotelog.Cursor{})
	if err != nil || len(all) != 195 {
		t.Fatalf("from scratch: %d messages, %v", len(all), err)
	}
	for i, m := range all {
		if m.Seq != uint64(i+1) || string(m.Body) != string(body(i)) {
			t.Fatalf("message %d: seq %d body %q", i+1, m.Seq, m.Body)
		}
	}
	for _, at := range []int{1, 50, 90, 95, 96, 150, 194} {
		m := all[at-1]
		got, _, _, err := read(t, w, w, remotelog.Cursor{Seq: m.Seq, ID: m.ID})
		if err != nil || len(got) != 195-at || (len(got) > 0 && got[0].Seq != uint64(at+1)) {
			t.Fatalf("from %d: %d messages, %v", at, len(got), err)
		}
	}
	if rep := remotelog.Check(context.Background(), w, w.w.Name(), cid.Undef, w.clock.Now); !rep.OK() || rep.Messages != 195 {
		t.Fatalf("check: %d messages, %+v", rep.Messages, rep.Findings)
	}
}

// TestDAGPaths: the page DAG of a v3 log of 1,000,000 messages has fewer
// distinct root-to-leaf paths than 10 times its pages (every page is
// reached from the index and maybe the window, through the head's window node), where
// v1's skip links make a lattice whose paths grow exponentially.
func TestDAGPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a log of 1,000,000 messages")
	}
	pol, _ := pager.Preset("paged")
	w := newWorld(t, pol)
	for i := 0; i < 1_000_000; i += 100_000 {
		w.appendN(t, i, 100_000, 0)
	}
	res := w.publish(t)
	paths, blocks := countPaths(t, w, res.Head)
	t.Logf("v3 (v2 pages), 1,000,000 messages: %d pages, %d index nodes, %d blocks, %s root-to-leaf paths", res.Pages, res.IndexNodes, blocks, paths)
	if limit := big.NewInt(int64(10 * res.Pages)); paths.Cmp(limit) >= 0 {
		t.Fatalf("%s paths, limit %s", paths, limit)
	}
	// The same messages in v1 (fewer, to keep the count quick to state).
	pol.Format = pager.V1
	w1 := newWorld(t, pol)
	w1.appendN(t, 0, 100_000, 0)
	res1 := w1.publish(t)
	paths1, _ := countPaths(t, w1, res1.Head)
	t.Logf("v1, 100,000 messages: %d pages, %s root-to-leaf paths", res1.Pages, paths1)
}

// countPaths counts the distinct paths from head to a block that links
// nothing, through pages and index nodes, and the blocks reached.
func countPaths(t *testing.T, w *world, head cid.Cid) (*big.Int, int) {
	memo := map[cid.Cid]*big.Int{}
	var walk func(c cid.Cid) *big.Int
	walk = func(c cid.Cid) *big.Int {
		if n, ok := memo[c]; ok {
			return n
		}
		b, err := w.store.Get(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		kids, err := pager.Children(b)
		if err != nil {
			t.Fatal(err)
		}
		n := new(big.Int)
		if len(kids) == 0 {
			n.SetInt64(1)
		}
		for _, k := range kids {
			n.Add(n, walk(k))
		}
		memo[c] = n
		return n
	}
	n := walk(head)
	return n, len(memo)
}

func page(t *testing.T, w *world, c cid.Cid) *pager.Page {
	t.Helper()
	b, err := w.store.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pager.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !pg.Attached() { // a v3 head: its window and index from its node
		nb, err := w.store.Get(context.Background(), pg.Node)
		if err != nil {
			t.Fatal(err)
		}
		wn, err := pager.DecodeWindowNode(nb)
		if err != nil {
			t.Fatal(err)
		}
		if err := pg.Attach(pg.Node, wn); err != nil {
			t.Fatal(err)
		}
	}
	return pg
}

func index(t *testing.T, w *world, c cid.Cid) *pager.Index {
	t.Helper()
	b, err := w.store.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := pager.DecodeIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestWholeLogHasItsIndex: a backup and a check read every block of a v2
// log, also the index node a reader inside the window never needs, so the
// backup file holds the whole DAG (Kubo's `dag import` pins it).
func TestWholeLogHasItsIndex(t *testing.T) {
	w := newWorld(t, small(t)) // 10 entries a page, a window of 4
	w.appendN(t, 0, 30, 0)
	res := w.publish(t)
	if res.Pages != 3 || res.IndexNodes != 1 {
		t.Fatalf("%d pages, %d index nodes", res.Pages, res.IndexNodes)
	}
	node := 1                                               // v3: the head's window node
	blocks := 3 + 1 + len(page(t, w, res.Head).Tail) + node // pages, the index node, the head's tail pieces
	var buf bytes.Buffer
	bk, err := remotelog.Backup(context.Background(), w, w.w.Name(), &buf, w.clock.Now, nil)
	if err != nil || bk.Blocks != blocks {
		t.Fatalf("backup: %d blocks, %v; want 3 pages, the index node, the window node and %d tail pieces", bk.Blocks, err, blocks-5)
	}
	rep := remotelog.Check(context.Background(), w, w.w.Name(), cid.Undef, w.clock.Now)
	if !rep.OK() || rep.Blocks != blocks {
		t.Fatalf("check: %d blocks, %+v", rep.Blocks, rep.Findings)
	}
	// A reader inside the window fetches every page and piece, not the index.
	_, _, st, err := read(t, w, w, remotelog.Cursor{})
	if err != nil || st.IndexNodes != 0 || st.WindowNodes != node || st.Pages != blocks-1-node {
		t.Fatalf("reader: %d pages, %d index nodes, %d window nodes, %v", st.Pages, st.IndexNodes, st.WindowNodes, err)
	}
}

// TestTailPieces: a head holds only the newest H..H+T-1 messages of its
// page (the preset's HeadEntries and TailEntries) and links the rest in
// graded pieces: aligned runs of T·2^j entries, each at most 1/TailRatio of
// the entries after it. A reader at every cursor near the end reads every
// message once, fetching only the pieces it misses, in at most 2 rounds;
// from scratch and through check and backup the pieces are read too.
func TestTailPieces(t *testing.T) {
	pol, _ := pager.Preset("paged") // 256 a page, a window of 64
	T, R, H := pol.TailEntries, pol.TailRatio, pol.HeadEntries
	w := newWorld(t, pol)
	w.appendN(t, 0, 1000, 0) // pages 0-2 sealed; page 3 holds 232
	res := w.publish(t)
	hp := page(t, w, res.Head)
	n := len(hp.Tail)
	if cut := (232 - H) / T * T; len(hp.Entries) != 232-cut || hp.PageStart() != 769 || n == 0 {
		t.Fatalf("head: %d pieces, %d entries, page from %d", n, len(hp.Entries), hp.PageStart())
	}
	// Each piece: aligned, a power of two times T, at most 1/R of what follows.
	end := func(i int) uint64 { // the sequence after piece i
		if i+1 < n {
			return hp.Tail[i+1].Start
		}
		return hp.Start
	}
	for i, l := range hp.Tail {
		size, off := int(end(i)-l.Start), int(l.Start-769)
		after := int(1000 - end(i) + 1)
		if size%T != 0 || (size/T)&(size/T-1) != 0 || off%size != 0 || (size > T && size*R > after) {
			t.Fatalf("piece %d: %d entries at offset %d, %d entries after it", i, size, off, after)
		}
	}
	all, _, st, err := read(t, w, w, remotelog.Cursor{})
	if err != nil || len(all) != 1000 || st.Pages != 1+3+n || st.WindowNodes != 1 {
		t.Fatalf("from scratch: %d messages, %d pages, %d window nodes, %v", len(all), st.Pages, st.WindowNodes, err)
	}
	for at := 700; at <= 1000; at++ {
		m := all[at-1]
		got, _, st, err := read(t, w, w, remotelog.Cursor{Seq: m.Seq, ID: m.ID})
		if err != nil || len(got) != 1000-at || (len(got) > 0 && got[0].Seq != uint64(at+1)) {
			t.Fatalf("from %d: %d messages, %v", at, len(got), err)
		}
		if st.Rounds > 2 {
			t.Fatalf("from %d: %d rounds", at, st.Rounds)
		}
		if at >= 769 {
			wantPieces := 0
			for i := range hp.Tail {
				if end(i) > uint64(at) {
					wantPieces++
				}
			}
			if st.Pages != 1+wantPieces || st.WindowNodes != 0 {
				t.Fatalf("from %d: %d page fetches and %d window nodes, want the head and %d pieces", at, st.Pages, st.WindowNodes, wantPieces)
			}
		}
	}
	if rep := remotelog.Check(context.Background(), w, w.w.Name(), cid.Undef, w.clock.Now); !rep.OK() || rep.Messages != 1000 || rep.Blocks != 1+3+n+1+1 {
		t.Fatalf("check: %d messages, %d blocks, %+v", rep.Messages, rep.Blocks, rep.Findings)
	}
	var buf bytes.Buffer
	if bk, err := remotelog.Backup(context.Background(), w, w.w.Name(), &buf, w.clock.Now, nil); err != nil || bk.Blocks != 1+3+n+1+1 {
		t.Fatalf("backup: %d blocks, %v", bk.Blocks, err)
	}
	// More messages: a piece of the same entries is the same block, and
	// the window node, with no page sealed, is the same too.
	w.appendN(t, 1000, 5, 0)
	next := page(t, w, w.publish(t).Head)
	same := 0
	for i, l := range next.Tail {
		nend := next.Start
		if i+1 < len(next.Tail) {
			nend = next.Tail[i+1].Start
		}
		for j, o := range hp.Tail {
			if o.Start == l.Start && end(j) == nend {
				if o.Cid != l.Cid {
					t.Fatalf("piece from %d to %d: %s, then %s", l.Start, nend, o.Cid, l.Cid)
				}
				same++
			}
		}
	}
	if same == 0 || next.Node != hp.Node {
		t.Fatalf("after 5 more: %d pieces kept, window node %s then %s", same, hp.Node, next.Node)
	}
}

// TestTailPiecesOfPageZero: the pieces of a log's first page are
// sealed-form pages numbered 0 that start after sequence 1.
func TestTailPiecesOfPageZero(t *testing.T) {
	pol, _ := pager.Preset("paged")
	T := pol.TailEntries
	w := newWorld(t, pol)
	w.appendN(t, 0, 40, 0)
	hp := page(t, w, w.publish(t).Head)
	if hp.Number != 0 || len(hp.Tail) < 2 || hp.Tail[0].Start != 1 || hp.Tail[1].Start <= uint64(T) || hp.Node.Defined() {
		t.Fatalf("head page %d with %d pieces", hp.Number, len(hp.Tail))
	}
	all, _, _, err := read(t, w, w, remotelog.Cursor{})
	if err != nil || len(all) != 40 {
		t.Fatalf("%d messages, %v", len(all), err)
	}
	if rep := remotelog.Check(context.Background(), w, w.w.Name(), cid.Undef, w.clock.Now); !rep.OK() {
		t.Fatalf("check: %+v", rep.Findings)
	}
}

// TestWindowNodeHint: a reader whose cursor is before the head's page
// (inside the window) fetches the head and its window node in one round
// when the record hints at the node, so it reads in 2 rounds; without a
// hint (a head given by hand, or an older record) it fetches the node
// after the head, one round more, and reads the same messages. A reader
// inside the head's page fetches no window node. A hint that does not
// match the head is refused, naming both.
func TestWindowNodeHint(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, small(t)) // 10 a page, a window of 4
	w.appendN(t, 0, 195, 0)
	res := w.publish(t)
	all, _, _, err := read(t, w, w, remotelog.Cursor{})
	if err != nil || len(all) != 195 {
		t.Fatalf("%d messages, %v", len(all), err)
	}
	hp := page(t, w, res.Head)
	at := func(seq int) remotelog.Cursor { return remotelog.Cursor{Seq: uint64(seq), ID: all[seq-1].ID} }
	for _, tc := range []struct {
		seq, rounds, nodes int
		opts               remotelog.ReadOptions
	}{
		{160, 2, 1, remotelog.ReadOptions{}},                 // hinted: head and node at once
		{160, 3, 1, remotelog.ReadOptions{Head: res.Head}},   // no hint: the node after the head
		{192, 1, 0, remotelog.ReadOptions{}},                 // inside the head's page: no node
		{192, 1, 0, remotelog.ReadOptions{Head: res.Head}},   // the same without a hint
		{1, 3, 1, remotelog.ReadOptions{}},                   // beyond the window: head and node, index, pages
		{1, 4, 1, remotelog.ReadOptions{Head: res.Head}},     // one more without a hint
		{int(hp.PageStart()), 1, 0, remotelog.ReadOptions{}}, // at the page's first entry
	} {
		var got []remotelog.Message
		_, st, err := remotelog.CatchUp(ctx, w, w.w.Name(), at(tc.seq), tc.opts, func(m remotelog.Message) error {
			got = append(got, m)
			return nil
		})
		if err != nil || len(got) != 195-tc.seq || st.Rounds != tc.rounds || st.WindowNodes != tc.nodes {
			t.Errorf("from %d (head given: %v): %d messages, %d rounds, %d window nodes, %v; want %d rounds, %d nodes",
				tc.seq, tc.opts.Head.Defined(), len(got), st.Rounds, st.WindowNodes, err, tc.rounds, tc.nodes)
		}
	}
	// Records signed by the writer's key with a hint that is not the head's.
	rec, err := namesys.Resolve(ctx, w.names, w.w.Name(), w.clock.Now())
	if err != nil || rec.Hint.Node != hp.Node || rec.Hint.PageStart != hp.PageStart() {
		t.Fatalf("the writer's record hints %+v, the head links %s from %d (%v)", rec.Hint, hp.Node, hp.PageStart(), err)
	}
	for i, hint := range []namesys.Hint{
		{PageStart: hp.PageStart(), Node: hp.Window[0].Cid}, // another block
		{PageStart: hp.PageStart() - 1, Node: hp.Node},      // another start
	} {
		raw, err := namesys.NewRecordHint(w.cfg.Key, res.Head, rec.Sequence+1+uint64(i), w.clock.Now().AddDate(100, 0, 0), time.Minute, hint)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.names.Publish(ctx, w.w.Name(), raw); err != nil {
			t.Fatal(err)
		}
		for _, seq := range []int{160, 192} {
			_, _, err := remotelog.CatchUp(ctx, w, w.w.Name(), at(seq), remotelog.ReadOptions{Now: w.clock.Now}, func(remotelog.Message) error {
				t.Fatal("a message delivered under a wrong hint")
				return nil
			})
			if !errors.Is(err, remotelog.ErrInvalidLog) || !strings.Contains(err.Error(), "hint") || !strings.Contains(err.Error(), hp.Node.String()) {
				t.Errorf("hint %+v, from %d: got %v, want ErrInvalidLog naming the hint and the head's node", hint, seq, err)
			}
		}
		if rep := remotelog.Check(ctx, w, w.w.Name(), cid.Undef, w.clock.Now); rep.OK() {
			t.Errorf("check passes a record with hint %+v", hint)
		}
	}
}
