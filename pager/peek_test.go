package pager_test

import (
	"encoding/hex"
	"testing"

	"rlog/internal/testdata"
	"rlog/pager"
)

// goldenBlocks are the blocks of the golden vectors: pages in head and
// sealed form, tail pieces, index nodes and window nodes.
func goldenBlocks(tb testing.TB) [][]byte {
	var out [][]byte
	for _, row := range testdata.Rows(tb, "pages/example.txt") {
		b, _ := hex.DecodeString(row[1])
		out = append(out, b)
	}
	for _, file := range []string{"pages/v2.txt", "pages/v3.txt"} {
		for _, row := range testdata.Rows(tb, file) {
			b, _ := hex.DecodeString(row[2])
			out = append(out, b)
		}
	}
	return out
}

// TestPeek: Peek tells every golden block as Decode does: its number and
// form when it is a page, not a page when it is an index or window node.
func TestPeek(t *testing.T) {
	pages, sealed, others := 0, 0, 0
	for i, b := range goldenBlocks(t) {
		p, head, ok := pager.Peek(b)
		pg, err := pager.Decode(b)
		if err != nil {
			others++
			if ok {
				t.Errorf("block %d is no page (%v), Peek reads page %d", i, err, p)
			}
			continue
		}
		pages++
		if !pg.Head {
			sealed++
		}
		if !ok || p != pg.Number || head != pg.Head {
			t.Errorf("block %d: Peek gives page %d head %v ok %v, Decode page %d head %v", i, p, head, ok, pg.Number, pg.Head)
		}
	}
	if pages == 0 || sealed == 0 || others == 0 {
		t.Fatalf("golden vectors give %d pages, %d sealed, %d other blocks: the test reads nothing", pages, sealed, others)
	}
	for _, b := range [][]byte{nil, {0xa1}, {0xa1, 0x61, 'e', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if _, _, ok := pager.Peek(b); ok {
			t.Errorf("Peek(%x) reads a page", b)
		}
	}
}

func FuzzPeek(f *testing.F) {
	for _, b := range goldenBlocks(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, head, ok := pager.Peek(b)
		if pg, err := pager.Decode(b); err == nil && (!ok || p != pg.Number || head != pg.Head) {
			t.Fatalf("Peek gives page %d head %v ok %v, Decode page %d head %v", p, head, ok, pg.Number, pg.Head)
		}
	})
}
