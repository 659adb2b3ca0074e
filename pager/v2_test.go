package pager_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"rlog/internal/testdata"
	"rlog/pager"
)

// exampleV2 is the v2 head of a log with pages 0..4 sealed: index nodes
// over pages 0-2 and 3-4, a window of two pages, one inline entry (no id)
// and one pointer entry.
func exampleV2() *pager.Page {
	return &pager.Page{
		Version: pager.Version,
		Number:  5, Start: 11,
		Entries: []pager.Entry{{Payload: []byte("hello")}, {ID: id(12), Ref: rawCID(12)}},
		Head:    true,
		Window:  []pager.Link{{Cid: pageCID(4), Start: 9}, {Cid: pageCID(3), Start: 7}},
		Index:   []pager.IndexLink{{Cid: pageCID(100), Page: 0, Start: 1}, {Cid: pageCID(103), Page: 3, Start: 7}},
		Addrs:   []string{"/ip4/127.0.0.1/tcp/4001"},
	}
}

// exampleV2Tail is exampleV2 whose page begins with two tail pieces (at
// sequences 11 and 13), the head holding messages 15 and 16.
func exampleV2Tail() *pager.Page {
	pg := exampleV2()
	pg.Start = 15
	pg.Tail = []pager.Link{{Cid: pageCID(50), Start: 11}, {Cid: pageCID(51), Start: 13}}
	return pg
}

// exampleSealedV2 is page 4 of that log, sealed.
func exampleSealedV2() *pager.Page {
	return &pager.Page{Version: pager.Version, Number: 4, Start: 9,
		Entries: []pager.Entry{{Payload: []byte("nine")}, {Payload: []byte{}}}}
}

// exampleIndex is the index node over pages 3 and 4.
func exampleIndex() *pager.Index {
	return &pager.Index{First: 3, Pages: []pager.Link{{Cid: pageCID(3), Start: 7}, {Cid: pageCID(4), Start: 9}}}
}

func TestV2RoundTrip(t *testing.T) {
	for _, pg := range []*pager.Page{exampleV2(), exampleSealedV2(), exampleV2Tail()} {
		back := roundTrip(t, pg)
		if back.V() != pager.Version || back.Head != pg.Head || len(back.Index) != len(pg.Index) {
			t.Fatalf("decoded %+v", back)
		}
		if e := back.Entries[0]; !e.Inline() || e.ID != ([32]byte{}) {
			t.Fatalf("a v2 inline entry decodes with an id: %+v", e)
		}
	}
	b, c, err := pager.EncodeIndex(exampleIndex())
	if err != nil {
		t.Fatal(err)
	}
	ix, err := pager.DecodeIndex(b)
	if err != nil || ix.First != 3 || ix.Last() != 4 {
		t.Fatalf("index node: %+v %v", ix, err)
	}
	if b2, c2, _ := pager.EncodeIndex(ix); !bytes.Equal(b, b2) || c != c2 {
		t.Fatal("index node re-encoding differs")
	}
	kids, err := pager.Children(b)
	if err != nil || len(kids) != 2 || kids[1] != pageCID(4) {
		t.Fatalf("children of an index node: %v %v", kids, err)
	}
	hb, _, _ := pager.Encode(exampleV2())
	if kids, err := pager.Children(hb); err != nil || len(kids) != 5 {
		t.Fatalf("children of a v2 head: %v %v (want 2 window, 2 index, 1 payload)", kids, err)
	}
	tb, _, _ := pager.Encode(exampleV2Tail())
	if kids, err := pager.Children(tb); err != nil || len(kids) != 7 {
		t.Fatalf("children of a v2 head with a tail: %v %v (want 2 window, 2 index, 2 pieces, 1 payload)", kids, err)
	}
	if back, _ := pager.Decode(tb); back.PageStart() != 11 || back.Start != 15 {
		t.Fatalf("page start %d, head entries from %d", back.PageStart(), back.Start)
	}
}

// TestV2IPLDReencodes: go-ipld-prime re-encodes v2 pages and index nodes
// byte for byte: they are canonical DAG-CBOR.
func TestV2IPLDReencodes(t *testing.T) {
	var blocks [][]byte
	for _, pg := range []*pager.Page{exampleV2(), exampleSealedV2(), exampleV2Tail()} {
		b, _, err := pager.Encode(pg)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	b, _, _ := pager.EncodeIndex(exampleIndex())
	blocks = append(blocks, b)
	for _, b := range blocks {
		ipldReencodes(t, b)
	}
}

// TestGoldenV2: the encodings of the v2 examples, in testdata/pages/v2.txt.
func TestGoldenV2(t *testing.T) {
	var vecs []goldenVec
	for _, pg := range []*pager.Page{exampleV2(), exampleSealedV2()} {
		b, _, err := pager.Encode(pg)
		if err != nil {
			t.Fatal(err)
		}
		vecs = append(vecs, goldenVec{fmt.Sprintf("page %d head=%v", pg.Number, pg.Head), b})
	}
	b, _, _ := pager.EncodeIndex(exampleIndex())
	vecs = append(vecs, goldenVec{"index 3-4", b})
	b, _, _ = pager.Encode(exampleV2Tail())
	vecs = append(vecs, goldenVec{"page 5 head=true tail=2", b})
	checkGolden(t, "pages/v2.txt", "# pager_test v2 examples: exampleV2 (head, page 5), exampleSealedV2 (page 4), exampleIndex (pages 3-4), exampleV2Tail (head with two tail pieces)\n", vecs)
}

// goldenVec is an encoding kept in a golden file, under a name.
type goldenVec struct {
	what string
	b    []byte
}

// checkGolden compares vecs with the rows of the golden file (what | cid |
// hex), after rewriting it from them under -update with its header.
func checkGolden(t *testing.T, file, header string, vecs []goldenVec) {
	t.Helper()
	if *update {
		text := header + "# what | cid | hex\n"
		for _, v := range vecs {
			c, _ := pager.PagePrefix.Sum(v.b)
			text += fmt.Sprintf("%s | %s | %x\n", v.what, c, v.b)
		}
		if err := os.WriteFile(testdata.Path(file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows := testdata.Rows(t, file)
	if len(rows) != len(vecs) {
		t.Fatalf("%d vectors in the file, %d here", len(rows), len(vecs))
	}
	for i, v := range vecs {
		c, _ := pager.PagePrefix.Sum(v.b)
		if rows[i][0] != v.what || rows[i][1] != c.String() || rows[i][2] != hex.EncodeToString(v.b) {
			t.Errorf("%s: encoding changed:\n got %s %x\nwant %s %s", v.what, c, v.b, rows[i][1], rows[i][2])
		}
	}
}

func TestV2DecodeRejects(t *testing.T) {
	enc := func(pg *pager.Page) []byte { return pager.EncodeUnchecked(pg) }
	head := func(mod func(*pager.Page)) []byte { pg := exampleV2(); mod(pg); return enc(pg) }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"head without x", func() []byte {
			b := enc(exampleV2())
			i := bytes.LastIndex(b, []byte{0x61, 'x'})
			b = b[:i]
			b[0]-- // one key fewer
			return b
		}(), `without "x"`},
		{"index not from page 0", head(func(pg *pager.Page) { pg.Index = pg.Index[1:] }), "want page 0 at 1"},
		{"index out of order", head(func(pg *pager.Page) { pg.Index[0], pg.Index[1] = pg.Index[1], pg.Index[0] }), "want page 0 at 1"},
		{"index past the head", head(func(pg *pager.Page) { pg.Index[1].Page = 5 }), "impossible before page 5"},
		{"no index on a head with sealed pages", head(func(pg *pager.Page) { pg.Index = []pager.IndexLink{} }), "lists no index node"},
		{"index node linked by payload CID", head(func(pg *pager.Page) { pg.Index[1].Cid = rawCID(1) }), "not a DAG-CBOR"},
		{"tail after the head's entries", head(func(pg *pager.Page) { pg.Tail = []pager.Link{{Cid: pageCID(50), Start: 11}} }), "impossible before the head's entries"},
		{"tail out of order", enc(func() *pager.Page {
			pg := exampleV2Tail()
			pg.Tail[0], pg.Tail[1] = pg.Tail[1], pg.Tail[0]
			return pg
		}()), "t[1] starts at sequence 11"},
		{"tail before the window", enc(func() *pager.Page {
			pg := exampleV2Tail()
			pg.Tail[0].Start = 9
			return pg
		}()), "not before the page's first piece"},
		{"tail on a sealed page", enc(func() *pager.Page {
			pg := exampleSealedV2()
			pg.Entries = append(pg.Entries, pager.Entry{Payload: []byte("x")})
			pg.Start = 9
			pg.Tail = []pager.Link{{Cid: pageCID(50), Start: 5}}
			return pg
		}()), ""},
	}
	for _, tc := range cases {
		if tc.want == "" { // what the encoder does not write at all
			if _, err := pager.Decode(tc.b); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		_, err := pager.Decode(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, pager.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed containing %q", tc.name, err, tc.want)
		}
	}
	// A v1 page whose version says 2 and whose entries have ids: refused.
	sealedV1 := examplePage()
	sealedV1.Head, sealedV1.Window, sealedV1.Addrs, sealedV1.Links = false, nil, nil, nil
	sealedV1.Version = pager.Version
	b := enc(sealedV1) // entry 0 in v2 form; make it {c, i}
	if _, err := pager.Decode(bytes.Replace(b, append([]byte{0x45}, "hello"...), append(append([]byte{0xa2, 0x61, 'c', 0x45}, "hello"...), append([]byte{0x61, 'i', 0x58, 0x20}, make([]byte, 32)...)...), 1)); err == nil || !strings.Contains(err.Error(), "v1 form") {
		t.Errorf("a {c, i} entry in a v2 page: got %v", err)
	}
	// A bare payload in a v1 page: refused.
	v1 := examplePage()
	v1.Version = pager.Version
	bb := enc(v1)
	bb = bytes.Replace(bb, []byte{0x61, 'v', 0x02}, []byte{0x61, 'v', 0x01}, 1)
	if _, err := pager.Decode(bb); err == nil || !strings.Contains(err.Error(), "without id in a v1 page") && !strings.Contains(err.Error(), `"x" in a v1 page`) {
		t.Errorf("a bare payload in a v1 page: got %v", err)
	}
	ixCases := []struct {
		name string
		ix   *pager.Index
		want string
	}{
		{"empty", &pager.Index{First: 3}, "lists 0 pages"},
		{"starts go back", &pager.Index{First: 3, Pages: []pager.Link{{Cid: pageCID(3), Start: 9}, {Cid: pageCID(4), Start: 7}}}, "impossible"},
		{"page 0 not at 1", &pager.Index{First: 0, Pages: []pager.Link{{Cid: pageCID(0), Start: 2}}}, "impossible"},
		{"payload CID", &pager.Index{First: 3, Pages: []pager.Link{{Cid: rawCID(3), Start: 7}}}, "not a DAG-CBOR"},
	}
	for _, tc := range ixCases {
		if _, _, err := pager.EncodeIndex(tc.ix); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("index %s: encode: got %v, want %q", tc.name, err, tc.want)
		}
		if _, err := pager.DecodeIndex(pager.EncodeIndexUnchecked(tc.ix)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("index %s: decode: got %v, want %q", tc.name, err, tc.want)
		}
	}
	ib, _, _ := pager.EncodeIndex(exampleIndex())
	if _, err := pager.DecodeIndex(bytes.Replace(ib, []byte{0x61, 'v', 0x02}, []byte{0x61, 'v', 0x01}, 1)); !errors.Is(err, pager.ErrVersion) {
		t.Errorf("index node of version 1: got %v", err)
	}
	if _, err := pager.DecodeIndex(append(ib, 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("index node with trailing bytes: got %v", err)
	}
}

func FuzzDecodeIndex(f *testing.F) {
	for _, row := range testdata.Rows(f, "pages/v2.txt") {
		b, _ := hex.DecodeString(row[2])
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if ix, err := pager.DecodeIndex(b); err == nil {
			again, _, err := pager.EncodeIndex(ix)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("decoded index node does not re-encode to its bytes: %v", err)
			}
		}
		if kids, err := pager.Children(b); err == nil && kids == nil && len(b) == 0 {
			t.Fatal("children of nothing")
		}
	})
}
