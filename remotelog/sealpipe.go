package remotelog

import (
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"rlog/pager"
)

// A pageSealer encodes the pages a publish seals and hands each to take,
// in order: at once, or, when parallel, on other cores while the publish
// paginates on (v2 pages do not depend on each other's CIDs; v1's skip
// links do). take then runs on another goroutine, one page at a time.
type pageSealer struct {
	take   func(b []byte, c cid.Cid, start uint64) error
	queue  chan *sealing // parallel: the pages being encoded, in order
	done   chan error
	failed atomic.Pointer[error] // parallel: the first failure, once known
}

type sealing struct {
	pg    *pager.Page
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

// seal encodes pg and hands it on; in parallel, it fails once a page
// before it failed.
func (s *pageSealer) seal(pg *pager.Page) error {
	if s.queue == nil {
		b, c, err := pager.Encode(pg)
		if err != nil {
			return err
		}
		return s.take(b, c, pg.Start)
	}
	if err := s.failed.Load(); err != nil {
		return *err // a page failed: the publish stops, not the rest encoded first
	}
	sp := &sealing{pg: pg, ready: make(chan struct{})}
	go func() {
		sp.raw, sp.c, sp.err = pager.Encode(sp.pg)
		close(sp.ready)
	}()
	s.queue <- sp
	return nil
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
