package remotelog

import (
	"testing"

	"rlog/pager"
)

// A catch-up reckoned at more than twice its budget holds the long
// budget; 100,000 messages of 256 B (391 pages, about 31 MB) keep the
// default budget and so their two waves; pages held beyond the new budget
// are let go, newest first.
func TestWindowShrinksForALongCatchUp(t *testing.T) {
	entries := func(uint64) uint64 { return 256 }
	const perEntry = 306 // a v2 inline entry of a 256-byte message
	for _, c := range []struct {
		pages  uint64
		shrink bool
	}{
		{391, false},   // 100,000 behind
		{530, false},   // just under twice the budget
		{3907, true},   // 1,000,000 from scratch
		{100000, true}, // a log far longer: the reckoning stops early
	} {
		w := newWindow(DefaultMemoryBudget)
		w.perEntry = perEntry
		for p := uint64(0); p < 40; p++ { // discovery held the first 40 (about 3 MB)
			w.held[p] = heldPage{&pager.Page{}, 80_000}
			w.kept += 80_000
		}
		got := w.shrinkIfLong(0, c.pages-1, entries, 2*DefaultMemoryBudget, LongMemoryBudget)
		if got != c.shrink {
			t.Errorf("%d pages: shrunk %v, want %v", c.pages, got, c.shrink)
			continue
		}
		want := DefaultMemoryBudget
		if c.shrink {
			want = LongMemoryBudget
		}
		if w.budget != want || w.kept > w.budget {
			t.Errorf("%d pages: budget %d holding %d bytes, want budget %d and no more held", c.pages, w.budget, w.kept, want)
		}
		for p := range w.held {
			if c.shrink && p >= uint64(LongMemoryBudget/80_000) {
				t.Errorf("%d pages: page %d kept past the long budget: the oldest are kept", c.pages, p)
			}
		}
	}
	// A budget the caller chose smaller than the long one stays.
	w := newWindow(2 << 20)
	w.perEntry = perEntry
	if w.shrinkIfLong(0, 3906, entries, 4<<20, LongMemoryBudget) || w.budget != 2<<20 {
		t.Errorf("a 2 MiB budget became %d", w.budget)
	}
}
