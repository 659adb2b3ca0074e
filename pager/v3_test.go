package pager_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"rlog/internal/testdata"
	"rlog/pager"
)

// exampleWindowNode is the window node of the v2 example's log (pages
// 0..4 sealed): its window of two pages and its two index nodes.
func exampleWindowNode() *pager.WindowNode {
	v2 := exampleV2()
	return &pager.WindowNode{Number: 5, Window: v2.Window, Index: v2.Index}
}

// exampleV3 is exampleV2Tail as a v3 head: the same entries, tail pieces
// and addresses, and a link to exampleWindowNode instead of w and x.
func exampleV3(t testing.TB) (*pager.Page, cid.Cid) {
	_, c, err := pager.EncodeWindowNode(exampleWindowNode())
	if err != nil {
		t.Fatal(err)
	}
	pg := exampleV2Tail()
	pg.Version, pg.Node, pg.Window, pg.Index = pager.V3, c, nil, nil
	return pg, c
}

func TestV3RoundTrip(t *testing.T) {
	pg, node := exampleV3(t)
	back := roundTrip(t, pg)
	if back.V() != pager.V3 || !back.Head || back.Node != node || back.Attached() || back.PageStart() != 11 || back.Start != 15 || len(back.Tail) != 2 {
		t.Fatalf("decoded %+v", back)
	}
	nb, c, err := pager.EncodeWindowNode(exampleWindowNode())
	if err != nil || c != node {
		t.Fatal(err)
	}
	wn, err := pager.DecodeWindowNode(nb)
	if err != nil {
		t.Fatal(err)
	}
	if again, c2, _ := pager.EncodeWindowNode(wn); !bytes.Equal(again, nb) || c2 != c {
		t.Fatal("window node re-encoding differs")
	}
	if err := back.Attach(c, wn); err != nil || !back.Attached() || len(back.Window) != 2 || len(back.Index) != 2 {
		t.Fatalf("attach: %v, %+v", err, back)
	}
	// The head links the node, its pieces and its payload; the node its
	// window pages and index nodes.
	hb, _, _ := pager.Encode(pg)
	if kids, err := pager.Children(hb); err != nil || len(kids) != 4 || kids[0] != node {
		t.Fatalf("children of a v3 head: %v %v (want the node, 2 pieces, 1 payload)", kids, err)
	}
	if kids, err := pager.Children(nb); err != nil || len(kids) != 4 {
		t.Fatalf("children of a window node: %v %v (want 2 window, 2 index)", kids, err)
	}
	// A v3 head of page 0 links no node and needs none.
	p0 := &pager.Page{Version: pager.V3, Number: 0, Start: 1, Head: true, Entries: []pager.Entry{{Payload: []byte("one")}}}
	if back := roundTrip(t, p0); !back.Attached() || back.Node.Defined() {
		t.Fatalf("v3 page 0: %+v", back)
	}
	ipldReencodes(t, hb)
	ipldReencodes(t, nb)
}

// TestV3Attach: Attach takes only the node the head links, for the head's
// page, with links that fit before the head's page.
func TestV3Attach(t *testing.T) {
	_, node := exampleV3(t)
	for _, tc := range []struct {
		name string
		mod  func(*pager.Page, *pager.WindowNode) cid.Cid
		want string
	}{
		{"another node", func(pg *pager.Page, wn *pager.WindowNode) cid.Cid { return pageCID(9) }, "the head links"},
		{"another page", func(pg *pager.Page, wn *pager.WindowNode) cid.Cid { wn.Number = 6; return node }, "for head page 6"},
		{"window not before the pieces", func(pg *pager.Page, wn *pager.WindowNode) cid.Cid {
			pg.Tail[0].Start = 9
			return node
		}, "not before the page's first piece"},
		{"index past the page start", func(pg *pager.Page, wn *pager.WindowNode) cid.Cid {
			pg.Tail = nil
			pg.Start = 7
			return node
		}, "w[0] starts at sequence 9"},
		{"a v2 head", func(pg *pager.Page, wn *pager.WindowNode) cid.Cid { pg.Version = pager.Version; return node }, "not a v3 head"},
	} {
		pg, _ := exampleV3(t)
		wn := exampleWindowNode()
		c := tc.mod(pg, wn)
		if err := pg.Attach(c, wn); err == nil || !strings.Contains(err.Error(), tc.want) || pg.V() == pager.V3 && pg.Attached() {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestV3DecodeRejects(t *testing.T) {
	enc := func(mod func(*pager.Page)) []byte { pg, _ := exampleV3(t); mod(pg); return pager.EncodeUnchecked(pg) }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"no node on page 5", enc(func(pg *pager.Page) { pg.Node = cid.Undef }), `links no window node "n"`},
		{"a node on page 0", enc(func(pg *pager.Page) {
			pg.Number, pg.Tail, pg.Start = 0, nil, 1
		}), "page 0 links a window node"},
		{"a node that is a payload", enc(func(pg *pager.Page) { pg.Node = rawCID(1) }), "not a DAG-CBOR"},
		{"a window in the head", func() []byte {
			pg, _ := exampleV3(t)
			pg.Version = pager.Version
			pg.Window, pg.Index = exampleV2().Window, exampleV2().Index
			b := pager.EncodeUnchecked(pg) // v2 form, w and x
			return bytes.Replace(b, []byte{0x61, 'v', 0x02}, []byte{0x61, 'v', 0x03}, 1)
		}(), `"w" or "x" in a v3 head`},
		{"n on a v2 head", func() []byte {
			pg, _ := exampleV3(t)
			b := pager.EncodeUnchecked(pg)
			return bytes.Replace(b, []byte{0x61, 'v', 0x03}, []byte{0x61, 'v', 0x02}, 1)
		}(), `key "n" in a v2 page`},
	} {
		_, err := pager.Decode(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, pager.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed containing %q", tc.name, err, tc.want)
		}
	}
	wn := func(mod func(*pager.WindowNode)) *pager.WindowNode { w := exampleWindowNode(); mod(w); return w }
	for _, tc := range []struct {
		name string
		wn   *pager.WindowNode
		want string
	}{
		{"page 0", wn(func(w *pager.WindowNode) { w.Number = 0; w.Window = nil; w.Index = nil }), "head page 0"},
		{"no index", wn(func(w *pager.WindowNode) { w.Index = nil }), "lists no index node"},
		{"window beyond the page", wn(func(w *pager.WindowNode) { w.Number = 1 }), "window of 2 pages before page 1"},
		{"window out of order", wn(func(w *pager.WindowNode) { w.Window[0], w.Window[1] = w.Window[1], w.Window[0] }), "not older"},
		{"index out of order", wn(func(w *pager.WindowNode) { w.Index[0], w.Index[1] = w.Index[1], w.Index[0] }), "want page 0 at 1"},
		{"a payload in the window", wn(func(w *pager.WindowNode) { w.Window[0].Cid = rawCID(3) }), "not a DAG-CBOR"},
	} {
		if _, _, err := pager.EncodeWindowNode(tc.wn); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("window node %s: encode: got %v, want %q", tc.name, err, tc.want)
		}
		if _, err := pager.DecodeWindowNode(pager.EncodeWindowNodeUnchecked(tc.wn)); err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, pager.ErrMalformed) {
			t.Errorf("window node %s: decode: got %v, want %q", tc.name, err, tc.want)
		}
	}
	nb, _, _ := pager.EncodeWindowNode(exampleWindowNode())
	if _, err := pager.DecodeWindowNode(bytes.Replace(nb, []byte{0x61, 'v', 0x03}, []byte{0x61, 'v', 0x02}, 1)); !errors.Is(err, pager.ErrVersion) {
		t.Errorf("window node of version 2: got %v", err)
	}
	if _, err := pager.DecodeWindowNode(append(nb, 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("window node with trailing bytes: got %v", err)
	}
	ib, _, _ := pager.EncodeIndex(exampleIndex())
	if _, err := pager.DecodeWindowNode(ib); err == nil {
		t.Error("an index node decodes as a window node")
	}
	if _, err := pager.Decode(nb); err == nil {
		t.Error("a window node decodes as a page")
	}
}

// TestGoldenV3: the encodings of the v3 examples, in testdata/pages/v3.txt.
func TestGoldenV3(t *testing.T) {
	pg, _ := exampleV3(t)
	hb, _, err := pager.Encode(pg)
	if err != nil {
		t.Fatal(err)
	}
	nb, _, _ := pager.EncodeWindowNode(exampleWindowNode())
	p0b, _, err := pager.Encode(&pager.Page{Version: pager.V3, Number: 0, Start: 1, Head: true, Entries: []pager.Entry{{Payload: []byte("one")}}})
	if err != nil {
		t.Fatal(err)
	}
	vecs := []goldenVec{{"head 5 v3 tail=2", hb}, {"window 5", nb}, {"head 0 v3", p0b}}
	checkGolden(t, "pages/v3.txt", "# pager_test v3 examples: exampleV3 (head, page 5, two tail pieces, its window node), exampleWindowNode (window and index of page 5), a v3 head of page 0\n", vecs)
}

// TestGradedTailPieces: graded pieces are aligned runs of T·2^j entries,
// each at most 1/R of the entries after it (or T), covering all but the
// newest H..H+T-1 entries (H the preset's HeadEntries), and none while the
// page has fewer than H+T entries.
func TestGradedTailPieces(t *testing.T) {
	pol, _ := pager.Preset("paged")
	T, R, H := pol.TailEntries, pol.TailRatio, pol.HeadEntries
	if T == 0 || R == 0 || H < 2 {
		t.Fatalf("paged preset: pieces of %d, ratio %d, %d in the head", T, R, H)
	}
	for n := 1; n <= pol.PageEntries; n++ {
		o := pager.NewOpen(pager.Version, 3, 1000, nil)
		for i := range n {
			o.Add(pol, pager.Item{Payload: []byte{byte(i)}})
		}
		pieces := o.TailPieces(pol)
		next := uint64(1000)
		for i, pc := range pieces {
			size, off := len(pc.Entries), int(pc.Start-1000)
			after := n - off - size
			if pc.Start != next || size%T != 0 || (size/T)&(size/T-1) != 0 || off%size != 0 || (size > T && size*R > after) {
				t.Fatalf("n=%d: piece %d of %d entries at offset %d, %d after it", n, i, size, off, after)
			}
			next += uint64(size)
		}
		head := n - int(next-1000)
		if (n >= H+T && (head < H || head > H+T-1)) || (n < H+T && head != n) {
			t.Fatalf("n=%d: the head holds %d entries", n, head)
		}
	}
}

// TestHeadEntries: with uniform pieces too, the head holds its newest
// H..H+T-1 entries once the page has H+T; a policy with a negative or too
// large HeadEntries is refused, naming it.
func TestHeadEntries(t *testing.T) {
	pol, _ := pager.Preset("paged")
	pol.TailEntries, pol.TailRatio, pol.HeadEntries = 8, 0, 5
	for n := 1; n <= 64; n++ {
		o := pager.NewOpen(pager.Version, 0, 1, nil)
		for i := range n {
			o.Add(pol, pager.Item{Payload: []byte{byte(i)}})
		}
		held := n
		for _, pc := range o.TailPieces(pol) {
			if len(pc.Entries) != 8 {
				t.Fatalf("n=%d: a piece of %d", n, len(pc.Entries))
			}
			held -= 8
		}
		if (n >= 13 && (held < 5 || held > 12)) || (n < 13 && held != n) {
			t.Fatalf("n=%d: the head holds %d entries", n, held)
		}
	}
	for _, h := range []int{-1, pager.MaxEntries + 1} {
		pol.HeadEntries = h
		if err := pol.Validate(); err == nil || !strings.Contains(err.Error(), "head entries") {
			t.Errorf("head entries %d: %v", h, err)
		}
	}
}

func FuzzDecodeWindowNode(f *testing.F) {
	for _, row := range testdata.Rows(f, "pages/v3.txt") {
		b, _ := hex.DecodeString(row[2])
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if wn, err := pager.DecodeWindowNode(b); err == nil {
			again, _, err := pager.EncodeWindowNode(wn)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("decoded window node does not re-encode to its bytes: %v", err)
			}
		}
		if pg, err := pager.Decode(b); err == nil && pg.V() == pager.V3 {
			again, _, err := pager.Encode(pg)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("decoded v3 head does not re-encode to its bytes: %v", err)
			}
		}
	})
}
