package pager_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/node/basicnode"

	"rlog/internal/testdata"
	"rlog/pager"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func id(n int) [32]byte { return sha256.Sum256([]byte(fmt.Sprint("id", n))) }

func pageCID(n int) cid.Cid {
	c, _ := pager.PagePrefix.Sum([]byte(fmt.Sprint("page", n)))
	return c
}

func rawCID(n int) cid.Cid {
	c, _ := pager.RawPrefix.Sum([]byte(fmt.Sprint("payload", n)))
	return c
}

// examplePage is page 5 of a log: skip links to pages 4 and 1, a window of
// three pages, one inline and one pointer entry.
func examplePage() *pager.Page {
	l4, l1 := pager.Link{Cid: pageCID(4), Start: 9}, pager.Link{Cid: pageCID(1), Start: 3}
	return &pager.Page{
		Number: 5, Start: 11,
		Entries: []pager.Entry{{ID: id(11), Payload: []byte("hello")}, {ID: id(12), Ref: rawCID(12)}},
		Links:   []pager.Link{l4, {Cid: pageCID(3), Start: 7}, l1},
		Head:    true,
		Window:  []pager.Link{l4, {Cid: pageCID(3), Start: 7}, {Cid: pageCID(2), Start: 5}},
		Addrs:   []string{"/ip4/127.0.0.1/tcp/4001"},
	}
}

// roundTrip encodes pg, decodes it and checks it encodes back the same.
func roundTrip(t *testing.T, pg *pager.Page) *pager.Page {
	t.Helper()
	b, c, err := pager.Encode(pg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := pager.Decode(b)
	if err != nil {
		t.Fatalf("decode what we encoded: %v", err)
	}
	b2, c2, err := pager.Encode(back)
	if err != nil || !bytes.Equal(b, b2) || c != c2 {
		t.Fatalf("page %d: re-encoding differs (%v)", pg.Number, err)
	}
	return back
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, head := range []bool{true, false} {
		pg := examplePage()
		if !head {
			pg.Head, pg.Window, pg.Addrs = false, nil, nil
		}
		back := roundTrip(t, pg)
		if back.Head != head || back.Last() != 12 || !back.Entries[1].Ref.Equals(rawCID(12)) {
			t.Fatalf("head=%v: decoded %+v", head, back)
		}
	}
}

// TestIPLDReencodesByteForByte: go-ipld-prime's DAG-CBOR codec decodes our
// page and encodes it back to the same bytes, so the page is canonical
// DAG-CBOR as Kubo and every IPLD tool sees it.
func TestIPLDReencodesByteForByte(t *testing.T) {
	pages := []*pager.Page{examplePage()}
	big := &pager.Page{Number: 0, Start: 1, Head: true, Window: []pager.Link{}}
	for i := range 300 {
		big.Entries = append(big.Entries, pager.Entry{ID: id(i), Payload: bytes.Repeat([]byte{byte(i)}, i*3)})
	}
	pages = append(pages, big)
	for _, pg := range pages {
		b, _, err := pager.Encode(pg)
		if err != nil {
			t.Fatal(err)
		}
		ipldReencodes(t, b)
	}
}

// ipldReencodes fails unless go-ipld-prime's DAG-CBOR codec decodes b and
// encodes it back to the same bytes.
func ipldReencodes(t *testing.T, b []byte) {
	t.Helper()
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(b)); err != nil {
		t.Fatalf("dagcbor decode: %v", err)
	}
	var out bytes.Buffer
	if err := dagcbor.Encode(nb.Build(), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), b) {
		t.Fatalf("dagcbor re-encoding differs:\n ours %x\nipld %x", b, out.Bytes())
	}
}

func TestGoldenPage(t *testing.T) {
	b, c, err := pager.Encode(examplePage())
	if err != nil {
		t.Fatal(err)
	}
	path := testdata.Path("pages/example.txt")
	if *update {
		text := fmt.Sprintf("# pager_test examplePage: page 5, head form\n# cid | hex\n%s | %x\n", c, b)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	row := testdata.Rows(t, "pages/example.txt")[0]
	if row[0] != c.String() || row[1] != hex.EncodeToString(b) {
		t.Fatalf("page encoding changed:\n got %s %x\nwant %s %s", c, b, row[0], row[1])
	}
}

// mutate encodes the example page, applies f to the bytes and decodes.
func decodeMutated(t *testing.T, f func(b []byte) []byte) error {
	t.Helper()
	b, _, err := pager.Encode(examplePage())
	if err != nil {
		t.Fatal(err)
	}
	_, err = pager.Decode(f(append([]byte(nil), b...)))
	return err
}

func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	o, _ := hex.DecodeString(old)
	n, _ := hex.DecodeString(new)
	if bytes.Count(b, o) < 1 {
		t.Fatalf("pattern %s not in page", old)
	}
	return bytes.Replace(b, o, n, 1)
}

func TestDecodeRejects(t *testing.T) {
	sealed := func(mod func(*pager.Page)) func([]byte) []byte {
		return func([]byte) []byte {
			pg := examplePage()
			pg.Head, pg.Window, pg.Addrs = false, nil, nil
			mod(pg)
			// Encode refuses invalid pages, so build the bytes by hand.
			b := pager.EncodeUnchecked(pg)
			return b
		}
	}
	cases := []struct {
		name string
		f    func([]byte) []byte
		want string
	}{
		{"unknown version", func(b []byte) []byte { return replaceOnce(t, b, "617601", "617604") }, "unsupported page format version: 4"},
		{"v1 page claiming v2", func(b []byte) []byte { return replaceOnce(t, b, "617601", "617602") }, `key "l" in a v2 page`},
		{"non-shortest integer", func(b []byte) []byte { return replaceOnce(t, b, "617005", "61701805") }, "not in shortest form"},
		{"key order", func(b []byte) []byte { return replaceOnce(t, b, "6170056173", "6171056173") }, "unknown key"},
		{"trailing bytes", func(b []byte) []byte { return append(b, 0) }, "trailing bytes"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }, "37 bytes (limit 128, 35 left)"},
		{"oversized", func([]byte) []byte { return make([]byte, pager.MaxPageBytes+1) }, "page too large"},
		{"both c and r", func(b []byte) []byte {
			// entry 1 {i, r} gets entry 0's inline payload: {c, i, r}
			return replaceOnce(t, b, "a2616958", "a3616345"+hex.EncodeToString([]byte("hello"))+"616958")
		}, "both inline payload"},
		{"neither c nor r", func(b []byte) []byte { return replaceOnce(t, b, "a261634568656c6c6f", "a1") }, "entry 0: malformed page: neither"},
		{"wrong skip links", sealed(func(pg *pager.Page) { pg.Links = pg.Links[:2] }), "has 2 skip links, want 3"},
		{"start before page", sealed(func(pg *pager.Page) { pg.Start = 3 }), "s >= p+1"},
		{"pointer is a page CID", sealed(func(pg *pager.Page) { pg.Entries[1].Ref = pageCID(1) }), "not a raw or dag-pb"},
		{"empty page", sealed(func(pg *pager.Page) { pg.Entries = nil }), "0 entries"},
		{"indefinite length", func(b []byte) []byte { b[0] = 0xbf; return b }, "indefinite"},
	}
	for _, tc := range cases {
		err := decodeMutated(t, tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
		if err != nil && !errors.Is(err, pager.ErrMalformed) && !errors.Is(err, pager.ErrVersion) && !errors.Is(err, pager.ErrTooLarge) {
			t.Errorf("%s: error %v wraps no pager sentinel", tc.name, err)
		}
	}
}

func TestWindowMustAgreeWithLinks(t *testing.T) {
	pg := examplePage()
	pg.Window[1] = pager.Link{Cid: pageCID(99), Start: 7}
	if _, _, err := pager.Encode(pg); err == nil || !strings.Contains(err.Error(), "w[1] and l[1]") {
		t.Fatalf("got %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, row := range testdata.Rows(f, "pages/example.txt") {
		b, _ := hex.DecodeString(row[1])
		f.Add(b)
	}
	for _, file := range []string{"pages/v2.txt", "pages/v3.txt"} {
		for _, row := range testdata.Rows(f, file) {
			b, _ := hex.DecodeString(row[2])
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pg, err := pager.Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes is canonical: it encodes back to the same bytes.
		again, _, err := pager.Encode(pg)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded page does not re-encode to its bytes: %v", err)
		}
	})
}
