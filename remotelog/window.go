package remotelog

import (
	"context"
	"sync"

	"rlog/pager"
)

// window holds the pages fetched and not yet delivered, within a memory
// budget. Discovery puts pages in as it finds them, keeping the oldest
// (they are delivered first) when they do not all fit; streaming fills it
// ahead of delivery in waves, oldest first, and delivery takes pages out.
type window struct {
	budget int
	mu     sync.Mutex
	cond   *sync.Cond
	held   map[uint64]heldPage
	kept   int // bytes held
	// perEntry is the most bytes per entry of the pages seen: a wave
	// reckons a page of n entries at n*perEntry plus pageFraming.
	perEntry int
	taken    uint64 // pages below it were delivered: taken in order
	err      error
}

type heldPage struct {
	pg   *pager.Page
	size int
}

func newWindow(budget int) *window {
	w := &window{budget: budget, held: map[uint64]heldPage{}}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// pageFraming bounds what a page holds beside its entries' encodings in
// a wave's reckoning: keys and numbers (tens of bytes), and a v1 page's
// skip links (bits.Len(p) links of 46 bytes: 1,012 bytes for page 2^21).
const pageFraming = 1536

// saw notes a page's entries for the estimate of pages not yet fetched.
func (w *window) saw(pg *pager.Page) {
	w.mu.Lock()
	w.sawLocked(pg)
	w.mu.Unlock()
}

func (w *window) sawLocked(pg *pager.Page) {
	n := 0
	for i := range pg.Entries {
		e := &pg.Entries[i]
		n += pager.EntrySizeV(pg.V(), len(e.Payload), e.Inline())
	}
	if len(pg.Entries) > 0 {
		w.perEntry = max(w.perEntry, (n+len(pg.Entries)-1)/len(pg.Entries))
	}
}

// keep holds page p. With evict (discovery, which finds pages in no
// particular order), it then lets the newest pages go while over budget:
// the oldest are delivered first, the others are fetched again when their
// turn comes. A wave's pages are all kept: its size was reckoned before.
func (w *window) keep(p uint64, pg *pager.Page, size int, evict bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sawLocked(pg)
	w.held[p] = heldPage{pg, size}
	w.kept += size
	if evict {
		w.evictAbove(0, w.budget)
	}
	w.cond.Broadcast()
}

// evictAbove lets pages numbered above floor go, newest first, until at
// most limit bytes are held. The caller holds w.mu.
func (w *window) evictAbove(floor uint64, limit int) {
	for w.kept > limit {
		var top uint64
		found := false
		for q := range w.held {
			if q > floor && (!found || q > top) {
				top, found = q, true
			}
		}
		if !found {
			return
		}
		w.kept -= w.held[top].size
		delete(w.held, top)
	}
}

// take waits for page p and removes it from the window. Pages are taken
// in order.
func (w *window) take(ctx context.Context, p uint64) (*pager.Page, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if h, ok := w.held[p]; ok {
			delete(w.held, p)
			w.kept -= h.size
			w.taken = p + 1
			w.cond.Broadcast()
			return h.pg, nil
		}
		if w.err != nil {
			return nil, w.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w.cond.Wait()
	}
}

// fail ends the waits of take with err.
func (w *window) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.cond.Broadcast()
	w.mu.Unlock()
}

// shrinkIfLong lowers the budget to small when the pages from from to
// last not held are reckoned at more than long bytes: a catch-up that
// takes many waves anyway holds fewer pages at once. Pages held beyond the
// new budget are let go, newest first, to be fetched in their turn.
func (w *window) shrinkIfLong(from, last uint64, entries func(q uint64) uint64, long, small int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if small >= w.budget {
		return false
	}
	left := 0
	for p := from; p <= last && left <= long; p++ {
		if _, ok := w.held[p]; !ok {
			left += w.estLocked(p, entries)
		}
	}
	if left <= long {
		return false
	}
	w.budget = small
	w.evictAbove(from, w.budget)
	return true
}

// estLocked reckons the bytes of page q of entries(q) entries. The caller
// holds w.mu.
func (w *window) estLocked(q uint64, entries func(q uint64) uint64) int {
	if w.perEntry == 0 {
		return pager.MaxPageBytes
	}
	return min(pager.MaxPageBytes, int(min(entries(q), pager.MaxEntries))*w.perEntry+pageFraming)
}

// nextWave waits until half the budget is free (or what the pages left
// need, or one page when nothing is held), letting go of pages held out of
// order beyond from, and returns the pages to fetch next: from from to
// last, oldest first, those not held, as many as the free bytes and most
// allow, reckoning page q at entries(q) entries. It returns nil when none
// is left.
func (w *window) nextWave(ctx context.Context, from, last uint64, most int, entries func(q uint64) uint64) ([]uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		from = max(from, w.taken)
		for from <= last {
			if _, ok := w.held[from]; !ok {
				break
			}
			from++
		}
		if from > last {
			return nil, nil
		}
		if w.err != nil {
			return nil, w.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		est := func(q uint64) int { return w.estLocked(q, entries) }
		var left int // bytes of the pages from from on not held, estimated
		for p := from; p <= last && left < w.budget/2; p++ {
			if _, ok := w.held[p]; !ok {
				left += est(p)
			}
		}
		want := min(w.budget/2, left)
		w.evictAbove(from, w.budget-want)
		if free := w.budget - w.kept; free >= want || w.kept == 0 {
			var wave []uint64
			reckoned := 0
			for p := from; p <= last && len(wave) < most; p++ {
				if _, ok := w.held[p]; ok {
					continue
				}
				if reckoned += est(p); len(wave) > 0 && reckoned > free {
					break
				}
				wave = append(wave, p)
			}
			return wave, nil
		}
		w.cond.Wait()
	}
}
