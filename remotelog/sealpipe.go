package remotelog

import (
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"rlog/pager"
)

// A pageSealer encodes the pages a publish seals and hands each to take,
// in order: at once, or, when parallel, on other cores while the publish
// paginates on (v2 pages do not depend on each other's CIDs; v1's skip
// links do). take then runs on another goroutine, one page at a time.
//
// Memory is used again, so that a publish of a million messages does not
// allocate their size several times over: a page's payloads are copied
// into an arena, free again once the page is encoded, and a parallel
// sealer encodes into buffers its caller frees once the store is done
// with them (see free).
type pageSealer struct {
	take   func(b []byte, c cid.Cid, start uint64) error
	queue  chan *sealing // parallel: the pages being encoded, in order
	done   chan error
	failed atomic.Pointer[error] // parallel: the first failure, once known

	mu     sync.Mutex
	arenas []*pageArena
	bufs   [][]byte // parallel: encoding buffers free again
}

type sealing struct {
	pg    *pager.Page
	arena *pageArena
	raw   []byte
	c     cid.Cid
	err   error
	ready chan struct{} // closed once encoded
}

// sealAhead is how many pages are encoded ahead of take.
const sealAhead = 4

func newPageSealer(parallel bool, take func([]byte, cid.Cid, uint64) error) *pageSealer {
	s := &pageSealer{take: take}
	if !parallel {
		return s
	}
	s.queue = make(chan *sealing, sealAhead)
	s.done = make(chan error, 1)
	go func() {
		var err error
		for sp := range s.queue {
			<-sp.ready
			if err == nil {
				err = sp.err
			}
			if err == nil {
				err = take(sp.raw, sp.c, sp.pg.Start)
			}
			if err != nil && s.failed.Load() == nil {
				s.failed.Store(&err)
			}
		}
		s.done <- err
	}()
	return s
}

// arena returns an arena for the payloads of the next page.
func (s *pageSealer) arena() *pageArena {
	if a, ok := pop(&s.mu, &s.arenas); ok {
		return a
	}
	return &pageArena{}
}

// pop takes the last of the free things in list, under mu.
func pop[T any](mu *sync.Mutex, list *[]T) (T, bool) {
	mu.Lock()
	defer mu.Unlock()
	var last T
	n := len(*list)
	if n == 0 {
		return last, false
	}
	last = (*list)[n-1]
	*list = (*list)[:n-1]
	return last, true
}

// seal encodes pg, whose payloads are in a, and hands it on; in parallel,
// it fails once a page before it failed.
func (s *pageSealer) seal(pg *pager.Page, a *pageArena) error {
	if s.queue == nil {
		b, c, err := pager.Encode(pg)
		s.release(a)
		if err != nil {
			return err
		}
		return s.take(b, c, pg.Start)
	}
	if err := s.failed.Load(); err != nil {
		return *err // a page failed: the publish stops, not the rest encoded first
	}
	sp := &sealing{pg: pg, arena: a, ready: make(chan struct{})}
	go func() {
		sp.raw, sp.c, sp.err = pager.EncodeTo(s.buf(), sp.pg)
		s.release(sp.arena)
		close(sp.ready)
	}()
	s.queue <- sp
	return nil
}

// release makes a free again: its page is encoded.
func (s *pageSealer) release(a *pageArena) {
	a.reset()
	s.mu.Lock()
	s.arenas = append(s.arenas, a)
	s.mu.Unlock()
}

// buf returns a buffer to encode a page into: nil, or one free again.
func (s *pageSealer) buf() []byte {
	b, _ := pop(&s.mu, &s.bufs)
	return b
}

// free gives back the encoding of a page handed to take, once the store
// no longer reads it (a packing store: once the next PutPacked or its
// Sync returned).
func (s *pageSealer) free(b []byte) {
	if s.queue == nil {
		return // encoded by Encode, its own
	}
	s.mu.Lock()
	s.bufs = append(s.bufs, b[:0])
	s.mu.Unlock()
}

// wait returns once every page sealed is handed on, with the first
// failure. It is called once, after the last seal, failed or not.
func (s *pageSealer) wait() error {
	if s.queue == nil {
		return nil
	}
	close(s.queue)
	return <-s.done
}

// A pageArena holds payloads copied out of the journal's reused read buffer
// for as long as their page needs them.
type pageArena struct {
	chunks  [][]byte      // the last is being filled
	entries []pager.Entry // the sealed page's entries (pager.Open.SealInto)
}

// arenaChunk is the size an arena grows by: a page of the paged preset
// holds up to 256 KiB.
const arenaChunk = 256 << 10

// copy returns a copy of p that stays until the arena is reset.
func (a *pageArena) copy(p []byte) []byte {
	n := len(a.chunks)
	if n == 0 || cap(a.chunks[n-1])-len(a.chunks[n-1]) < len(p) {
		a.chunks = append(a.chunks, make([]byte, 0, max(arenaChunk, len(p))))
		n++
	}
	c := a.chunks[n-1]
	at := len(c)
	c = append(c, p...)
	a.chunks[n-1] = c
	return c[at:len(c):len(c)]
}

// reset empties the arena, keeping its first chunk and its entries.
func (a *pageArena) reset() {
	clear(a.entries) // no payload outlives its page through them
	if len(a.chunks) > 0 {
		clear(a.chunks[1:])
		a.chunks = a.chunks[:1]
		a.chunks[0] = a.chunks[0][:0]
	}
}
