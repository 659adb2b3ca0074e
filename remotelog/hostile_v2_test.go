package remotelog_test

import (
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"

	"rlog/pager"
	"rlog/remotelog"
)

// TestHostileIndex: v2 logs whose index nodes lie. Each is refused with
// ErrInvalidLog (or a decoding error), delivering only what verified
// before the lie, and never a message out of place.
func TestHostileIndex(t *testing.T) {
	v2 := func(es []pager.Entry) []pager.Entry {
		out := make([]pager.Entry, len(es))
		for i, e := range es {
			out[i] = pager.Entry{Payload: e.Payload}
		}
		return out
	}
	// Pages 0 (1-3), 1 (4-5), head 2 (6); window empty so the index is read.
	sealed := func(f *forge, p, s uint64, from, to int) cid.Cid {
		return f.page(&pager.Page{Version: pager.Version, Number: p, Start: s, Entries: v2(entries(from, to))})
	}
	head := func(f *forge, index []pager.IndexLink) cid.Cid {
		return f.page(&pager.Page{Version: pager.Version, Number: 2, Start: 6, Entries: v2(entries(6, 6)), Head: true, Window: []pager.Link{}, Index: index})
	}
	index := func(f *forge, ix *pager.Index) cid.Cid {
		b, _, err := pager.EncodeIndex(ix)
		if err != nil {
			t.Fatal(err)
		}
		return f.put(b)
	}
	cases := []forgeCase{
		{"honest", func(f *forge) {
			p0, p1 := sealed(f, 0, 1, 1, 3), sealed(f, 1, 4, 4, 5)
			ix := index(f, &pager.Index{First: 0, Pages: []pager.Link{{Cid: p0, Start: 1}, {Cid: p1, Start: 4}}})
			f.publishHead(head(f, []pager.IndexLink{{Cid: ix, Page: 0, Start: 1}}))
		}, nil, "", 6},
		{"index lists too few pages", func(f *forge) {
			p0 := sealed(f, 0, 1, 1, 3)
			ix := index(f, &pager.Index{First: 0, Pages: []pager.Link{{Cid: p0, Start: 1}}})
			f.publishHead(head(f, []pager.IndexLink{{Cid: ix, Page: 0, Start: 1}}))
		}, remotelog.ErrInvalidLog, "lists pages 0 to 0", 0},
		{"index says a page starts elsewhere", func(f *forge) {
			p0, p1 := sealed(f, 0, 1, 1, 3), sealed(f, 1, 4, 4, 5)
			ix := index(f, &pager.Index{First: 0, Pages: []pager.Link{{Cid: p0, Start: 1}, {Cid: p1, Start: 5}}})
			f.publishHead(head(f, []pager.IndexLink{{Cid: ix, Page: 0, Start: 1}}))
		}, remotelog.ErrInvalidLog, "page 0 ends at sequence 3 but page 1 starts at 5", 0},
		{"index swaps pages", func(f *forge) {
			p0, p1 := sealed(f, 0, 1, 1, 3), sealed(f, 1, 4, 4, 5)
			ix := index(f, &pager.Index{First: 0, Pages: []pager.Link{{Cid: p1, Start: 1}, {Cid: p0, Start: 4}}})
			f.publishHead(head(f, []pager.IndexLink{{Cid: ix, Page: 0, Start: 1}}))
		}, remotelog.ErrInvalidLog, "says it is page 1 but is linked as page 0", 0},
		{"index link names a page", func(f *forge) {
			p0 := sealed(f, 0, 1, 1, 3)
			sealed(f, 1, 4, 4, 5)
			f.publishHead(head(f, []pager.IndexLink{{Cid: p0, Page: 0, Start: 1}}))
		}, pager.ErrMalformed, "index node", 0},
		{"malformed index node", func(f *forge) {
			p0, p1 := sealed(f, 0, 1, 1, 3), sealed(f, 1, 4, 4, 5)
			b, _, _ := pager.EncodeIndex(&pager.Index{First: 0, Pages: []pager.Link{{Cid: p0, Start: 1}, {Cid: p1, Start: 4}}})
			// page 0 said to start at sequence 2
			b = bytes.Replace(b, append(p0.Bytes(), 0x01), append(p0.Bytes(), 0x02), 1)
			f.publishHead(head(f, []pager.IndexLink{{Cid: f.put(b), Page: 0, Start: 1}}))
		}, pager.ErrMalformed, "impossible", 0},
	}
	runForged(t, cases)
}
