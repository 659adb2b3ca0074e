package remotelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/pager"
)

// Source is where a reader reads a log: blocks and records. Nothing it
// returns is trusted: blocks are re-hashed, records verified.
type Source interface {
	cas.Getter
	namesys.Resolver
}

// Cursor is how far a reader has read a log. The zero Cursor reads from the
// start. A cursor with a zero ID (a start chosen by hand) skips the fork
// check at its own sequence; one with an empty Head (written by an older
// rlog) skips the record fork check at RecordSeq.
type Cursor struct {
	Seq       uint64         `json:"seq"`              // last sequence delivered
	ID        mvds.MessageID `json:"id"`               // its message id
	RecordSeq uint64         `json:"record_seq"`       // highest record sequence seen
	Head      string         `json:"head,omitempty"`   // the head of that record, when known
	Pinned    string         `json:"pinned,omitempty"` // head this repo's daemon pins (rlog pin)
}

// Record is the record the cursor last accepted, its value unknown when
// Head is empty, for namesys.Compare; nil for a cursor that has seen none.
func (c Cursor) Record(name ipns.Name) *namesys.Record {
	if c.RecordSeq == 0 && c.Head == "" {
		return nil
	}
	head, _ := cid.Decode(c.Head)
	return &namesys.Record{Name: name, Sequence: c.RecordSeq, Value: head}
}

// Message is a verified message of a log. A large message (see
// LargeMessage) is not held in memory: Body and Wire are nil, Ref names its
// payload file and, when a reader delivers it, BodyFile is a file holding
// its verified body, removed once the delivery returns unless the receiver
// has moved it.
type Message struct {
	Seq      uint64
	ID       mvds.MessageID
	Wire     []byte // the wire payload as published
	BodySize uint64
	Ref      cid.Cid // the payload file (H2) of a large message
	BodyFile string
	mvds.Message
	// opened: ReadOptions.Prepare opened its body (OpenBodies), so
	// Opening delivers it as it is.
	opened bool
}

// IsLarge reports whether the message's body is not held in memory.
func (m Message) IsLarge() bool { return m.Ref.Defined() && m.Wire == nil }

// Stats reports the cost of a catch-up.
type Stats struct {
	Messages uint64 // delivered
	// Rounds counts the sequential waves of requests after the resolve, as
	// the network sees them: the head, each round of discovery, each window
	// of pages streamed, and the pointer payloads (one more when any).
	Rounds         int
	Pages          int   // page fetches, the head included
	IndexNodes     int   // index node fetches (format v2)
	WindowNodes    int   // window node fetches (format v3): 0 or 1
	Payloads       int   // pointer payload fetches
	BytesFetched   int64 // bytes of every block fetched
	PayloadBytes   int64 // wire payload bytes delivered
	Head           cid.Cid
	RecordSequence uint64
	LogLength      uint64
}

// ReadOptions tune a catch-up.
type ReadOptions struct {
	Now func() time.Time
	// Concurrency bounds the pages fetched in one wave and the pointer
	// payloads fetched in parallel; default 256.
	Concurrency int
	// MemoryBudget bounds the bytes of pages held between fetching them
	// and delivering their messages. Pages are fetched ahead in windows of
	// about half of it, oldest first, while the other half is delivered;
	// a page fetched during discovery beyond it is fetched again when its
	// turn comes. Default 21 MiB, or 4 MiB from a LocalSource; by default
	// a catch-up whose pages are reckoned at more than twice the budget
	// (many waves whatever the budget) holds LongMemoryBudget instead. A
	// wave reckons each page by its number of
	// entries and the most bytes per entry seen so far, so a log whose
	// pages grow may take it over by what they exceed that.
	MemoryBudget int
	// Head, when defined, is the head page to read from instead of the
	// name's record: a head the caller vouches for (a backup's root). No
	// record is resolved or verified then.
	Head cid.Cid
	// OnHead, when set, is told the log's length once the head is read,
	// before any message is delivered.
	OnHead func(length uint64)
	// SpoolDir is where the bodies of large messages are written for
	// delivery (see Message). Default: the system's temporary directory.
	SpoolDir string
	// OnRecord, when set, is given the verified record before its log is
	// read.
	OnRecord func(rec *namesys.Record)
	// Hint, with Head, is a hint to check the head against and use, as
	// one from the record would be (a record read elsewhere: Check).
	Hint namesys.Hint
	// Whole reads every block of the log, also the index nodes (format v2)
	// that the messages read do not need: for check, backup and restore.
	Whole bool
	// Prepare, when set, is run on each verified message before it is
	// delivered, on the reader's workers ahead of delivery: up to 64
	// messages of a page in one worker, one worker per core at once,
	// delivery still in order. An error fails the read at that message, which is not
	// delivered (nor anything after it). OpenBodies opens private bodies
	// so.
	Prepare func(*Message) error
}

func (o *ReadOptions) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
}

// Default page budgets of a catch-up (ReadOptions.MemoryBudget). Over a
// network, the first wave fills the budget and each later one half of it:
// 21 MiB takes 100,000 messages of 256 B (391 pages, 30 MiB) in two waves,
// and keeps the heap of a catch-up of any length under 64 MiB (the Go
// heap grows to about twice what is live between collections; decoded
// pages hold a quarter more than their blocks). From a local source a
// round costs a disk read, not a network round trip, so it holds fewer
// pages ahead: a million messages from a repo or a backup file then fit a
// phone's memory (docs/PERFORMANCE.md, "A million messages on a phone").
//
// A catch-up longer than that (its pages reckoned at more than twice the
// budget: a million messages from scratch, not 100,000 behind) takes many
// waves whatever the budget, and over a real link its time is the
// transfer's, not the waves': it holds LongMemoryBudget, so that a command
// reading a million messages from a gateway stays under 64 MiB of
// resident memory on a phone (docs/PERFORMANCE.md).
const (
	DefaultMemoryBudget = 21 << 20
	LocalMemoryBudget   = 4 << 20
	LongMemoryBudget    = 8 << 20
)

// LocalSource is a Source whose blocks are on this machine when Local
// says so: a repo's embedded store, a CAR file.
type LocalSource interface {
	Local() bool
}

func isLocal(src any) bool {
	l, ok := src.(LocalSource)
	return ok && l.Local()
}

// CatchUp reads the messages of log name after cur from src and calls
// deliver for each, in sequence order. It returns the cursor after the
// last message delivered, also when it fails part way, so a caller that
// saves it never sees a message twice or misses one. It verifies every
// block, record, page and message id; a log whose message at cur.Seq is
// no longer cur.ID fails with ErrFork before anything is delivered, and
// so does one shorter than cur.Seq; a cursor without an ID (chosen by
// hand) beyond the log's end fails with ErrPastEnd.
func CatchUp(ctx context.Context, src Source, name ipns.Name, cur Cursor, opts ReadOptions, deliver func(Message) error) (Cursor, Stats, error) {
	if opts.MemoryBudget <= 0 && isLocal(src) {
		opts.MemoryBudget = LocalMemoryBudget
	}
	chosen := opts.MemoryBudget > 0
	opts.defaults()
	r := &catchUp{src: src, opts: opts, cur: cur, deliver: deliver, budgetChosen: chosen}
	r.get = &counting{g: verifying(src), n: &r.stats.BytesFetched}
	err := r.run(ctx, name)
	if err != nil {
		err = fmt.Errorf("remotelog: read %s: %w", name, err)
	}
	return r.cur, r.stats, err
}

// verifiedSource is a source whose every block is verified before it is
// returned (a tee, the block cache): read as it is, not hashed again.
type verifiedSource interface {
	Source
	verifiesBlocks()
}

// verifying returns src as a getter that verifies every block: src itself
// when it does already.
func verifying(src Source) cas.Getter {
	if v, ok := src.(verifiedSource); ok {
		return v
	}
	return cas.Verify(src)
}

type counting struct {
	g cas.Getter
	n *int64
}

func (c *counting) Get(ctx context.Context, k cid.Cid) ([]byte, error) {
	b, err := c.g.Get(ctx, k)
	atomic.AddInt64(c.n, int64(len(b)))
	return b, err
}

type catchUp struct {
	src     Source
	get     cas.Getter
	opts    ReadOptions
	cur     Cursor
	deliver func(Message) error
	stats   Stats
	rec     *namesys.Record // the record read, if any

	head  *pager.Page
	known map[uint64]pager.Link // every page seen linked, by number
	done  map[uint64]bool       // pages fetched during discovery
	win   *window               // fetched pages kept for delivery
	// budgetChosen: the caller or the source set the memory budget, which
	// a long catch-up then keeps.
	budgetChosen bool
}

func (r *catchUp) run(ctx context.Context, name ipns.Name) error {
	r.stats.Head, r.stats.RecordSequence = r.opts.Head, r.cur.RecordSeq
	if !r.opts.Head.Defined() {
		rec, err := namesys.Resolve(ctx, r.src, name, r.opts.Now())
		if errors.Is(err, namesys.ErrNotFound) {
			return fmt.Errorf("%w: %w", ErrNoLog, err)
		}
		if err != nil {
			return err
		}
		if err := namesys.Compare(r.cur.Record(name), rec); errors.Is(err, ErrFork) {
			return fmt.Errorf("%w (this reader read the one held and reads nothing of the other): the writer's key published two logs; a newer record from the writer ends it (`rlog recover`, then `rlog publish`, on one of its devices merges both)", err)
		} else if err != nil {
			return err
		}
		r.stats.Head, r.stats.RecordSequence = rec.Value, rec.Sequence
		r.rec = rec
		if r.opts.OnRecord != nil {
			r.opts.OnRecord(rec)
		}
	}
	hint := r.opts.Hint
	if r.rec != nil {
		hint = r.rec.Hint
	}
	r.stats.Rounds, r.stats.Pages = 1, 1
	head, err := r.fetchHead(ctx, hint)
	if err != nil {
		return err
	}
	r.head = head
	r.stats.LogLength = head.Last()
	if r.opts.OnHead != nil {
		r.opts.OnHead(head.Last())
	}
	if head.Last() < r.cur.Seq {
		if r.cur.ID == (mvds.MessageID{}) {
			return fmt.Errorf("%w: the log has %d messages, the cursor is at %d", ErrPastEnd, head.Last(), r.cur.Seq)
		}
		return fmt.Errorf("%w: the log has %d messages but this reader has read %d", ErrFork, head.Last(), r.cur.Seq)
	}
	if err := r.discover(ctx); err != nil {
		return err
	}
	if err := r.stream(ctx); err != nil {
		return err
	}
	if r.rec != nil {
		r.cur.RecordSeq, r.cur.Head = r.rec.Sequence, r.rec.Value.String()
	}
	return nil
}

// fetchHead fetches and checks the head and, for a v3 head, its window
// node when the reader needs it: when its cursor is before the head's page,
// or it reads the whole log. With a hint the node is fetched beside the
// head, in the same round; without one, after it, one round more. A hint
// must name the head's node and page start.
func (r *catchUp) fetchHead(ctx context.Context, hint namesys.Hint) (*pager.Page, error) {
	type got struct {
		b   []byte
		err error
	}
	var early chan got
	if hint.Node.Defined() && (r.opts.Whole || hint.PageStart > r.from()) {
		early = make(chan got, 1)
		go func() {
			b, err := r.get.Get(ctx, hint.Node)
			early <- got{b, err}
		}()
	}
	head, _, err := r.fetchPage(ctx, r.stats.Head, 0, 0, true)
	if err != nil {
		if early != nil {
			<-early
		}
		return nil, err
	}
	if hint.Node.Defined() && (!hint.Node.Equals(head.Node) || hint.PageStart != head.PageStart()) {
		if early != nil {
			<-early
		}
		return nil, fmt.Errorf("%w: the record's hint names window node %s and a page from sequence %d, but the head %s links %s and its page starts at %d",
			ErrInvalidLog, hint.Node, hint.PageStart, r.stats.Head, nodeName(head.Node), head.PageStart())
	}
	if head.Attached() || (!r.opts.Whole && head.PageStart() <= r.from()) {
		return head, nil
	}
	var b []byte
	if early != nil {
		g := <-early
		b, err = g.b, g.err
	} else {
		r.stats.Rounds++
		b, err = r.get.Get(ctx, head.Node)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch window node %s: %w", head.Node, err)
	}
	r.stats.WindowNodes++
	wn, err := pager.DecodeWindowNode(b)
	if err != nil {
		return nil, fmt.Errorf("window node %s: %w", head.Node, err)
	}
	if err := head.Attach(head.Node, wn); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLog, err)
	}
	return head, nil
}

func nodeName(c cid.Cid) string {
	if !c.Defined() {
		return "no window node"
	}
	return c.String()
}

// fetchPage fetches and checks one page: number p starting at s, or the
// head when head is true (p and s unknown).
func (r *catchUp) fetchPage(ctx context.Context, c cid.Cid, p, s uint64, head bool) (*pager.Page, int, error) {
	b, err := r.get.Get(ctx, c)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch page %s: %w", c, err)
	}
	pg, err := pager.Decode(b)
	if err != nil {
		return nil, 0, fmt.Errorf("page %s: %w", c, err)
	}
	switch {
	case head && !pg.Head:
		return nil, 0, fmt.Errorf("%w: the record points at %s, a sealed page, not a head page", ErrInvalidLog, c)
	case !head && pg.Head:
		return nil, 0, fmt.Errorf("%w: page %d (%s) is in head form but is linked as sealed", ErrInvalidLog, p, c)
	case !head && pg.Number != p:
		return nil, 0, fmt.Errorf("%w: page %s says it is page %d but is linked as page %d", ErrInvalidLog, c, pg.Number, p)
	case !head && pg.Start != s:
		return nil, 0, fmt.Errorf("%w: page %d (%s) starts at sequence %d but is linked as starting at %d", ErrInvalidLog, p, c, pg.Start, s)
	}
	return pg, len(b), nil
}

// learn records the links of a fetched page, refusing contradictions.
func (r *catchUp) learn(pg *pager.Page) error {
	for j, l := range pg.Links {
		if err := r.addLink(pager.LinkTarget(pg.Number, j), l); err != nil {
			return err
		}
	}
	for k, l := range pg.Window {
		if err := r.addLink(pg.Number-1-uint64(k), l); err != nil {
			return err
		}
	}
	return nil
}

// addLink records that page p is l, refusing a contradiction.
func (r *catchUp) addLink(p uint64, l pager.Link) error {
	if p == 0 && l.Start != 1 {
		return fmt.Errorf("%w: page 0 is linked as starting at sequence %d; a log starts at 1", ErrInvalidLog, l.Start)
	}
	if old, ok := r.known[p]; ok && old != l {
		return fmt.Errorf("%w: page %d is linked both as %s at %d and as %s at %d", ErrInvalidLog, p, old.Cid, old.Start, l.Cid, l.Start)
	}
	r.known[p] = l
	return nil
}

// fetchIndex fetches the head's index node i (format v2) and checks it
// lists the pages its link says: from x.Page, starting at x.Start, up to
// the next node's first page or the head.
func (r *catchUp) fetchIndex(ctx context.Context, i int) (*pager.Index, error) {
	x := r.head.Index[i]
	end := r.head.Number
	if i+1 < len(r.head.Index) {
		end = r.head.Index[i+1].Page
	}
	b, err := r.get.Get(ctx, x.Cid)
	if err != nil {
		return nil, fmt.Errorf("fetch index node %s: %w", x.Cid, err)
	}
	ix, err := pager.DecodeIndex(b)
	if err != nil {
		return nil, fmt.Errorf("index node %s: %w", x.Cid, err)
	}
	if ix.First != x.Page || ix.Pages[0].Start != x.Start || ix.Last()+1 != end {
		return nil, fmt.Errorf("%w: index node %s lists pages %d to %d from sequence %d, but is linked as listing pages %d to %d from %d",
			ErrInvalidLog, x.Cid, ix.First, ix.Last(), ix.Pages[0].Start, x.Page, end-1, x.Start)
	}
	return ix, nil
}

// from is the first sequence the reader must see: the cursor's own entry,
// to check it, or the first message.
func (r *catchUp) from() uint64 { return max(r.cur.Seq, 1) }

// start is page p's first sequence, if known.
func (r *catchUp) start(p uint64) (uint64, bool) {
	if p == r.head.Number {
		return r.head.PageStart(), true
	}
	l, ok := r.known[p]
	return l.Start, ok
}

// Streaming goes over slots: the sealed pages 0..h-1, then the head's tail
// pieces (v2) h..end-1, then the head itself, end.
func (r *catchUp) end() uint64 { return r.head.Number + uint64(len(r.head.Tail)) }

// slot is the link and page number of slot q before end.
func (r *catchUp) slot(q uint64) (pager.Link, uint64) {
	if h := r.head.Number; q >= h {
		return r.head.Tail[q-h], h
	}
	return r.known[q], q
}

// slotStart is the first sequence of slot q.
func (r *catchUp) slotStart(q uint64) uint64 {
	if q >= r.end() {
		return r.head.Start
	}
	l, _ := r.slot(q)
	return l.Start
}

// firstSlot is the slot holding sequence lo.
func (r *catchUp) firstSlot(lo uint64) uint64 {
	h, tail := r.head.Number, r.head.Tail
	switch {
	case lo >= r.head.Start:
		return r.end()
	case len(tail) > 0 && lo >= tail[0].Start:
		i := len(tail) - 1
		for tail[i].Start > lo {
			i--
		}
		return h + uint64(i)
	}
	return r.firstPage(lo)
}

// discover learns, round by round, the link of every page holding
// sequences from r.from() on. Each round fetches in parallel what can
// name pages not known yet: a v2 head's index nodes, which list every
// sealed page, and v1 pages, each naming the pages 2^j before it. Pages
// within the head's window need no round; beyond it a v2 log takes one
// round and a v1 log O(log) rounds. Pages fetched here are kept for
// delivery within the memory budget. A page number is a claim of the log,
// and a hostile one claims 2^61: the work of a round goes over the pages
// known and fetched, never over the range of numbers between them.
func (r *catchUp) discover(ctx context.Context) error {
	h := r.head.Number
	r.known = map[uint64]pager.Link{}
	r.win = newWindow(r.opts.MemoryBudget)
	r.win.saw(r.head)
	r.done = map[uint64]bool{h: true}
	nodesDone := map[int]bool{}
	if err := r.learn(r.head); err != nil {
		return err
	}
	if r.opts.Whole && len(r.head.Index) > 0 {
		all := make([]int, len(r.head.Index))
		for i := range all {
			all[i] = i
			nodesDone[i] = true
		}
		for len(all) > 0 {
			n := min(len(all), r.opts.Concurrency)
			r.stats.Rounds++
			if err := r.discoverRound(ctx, nil, all[:n]); err != nil {
				return err
			}
			all = all[n:]
		}
	}
	lo := r.from()
	if r.head.PageStart() <= lo {
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// q: the newest page known to start at or before lo, or 0.
		var q uint64
		for p, l := range r.known {
			if l.Start <= lo && p > q {
				q = p
			}
		}
		if s, _ := r.start(q); s > lo {
			return fmt.Errorf("%w: no page holds sequence %d", ErrInvalidLog, lo)
		}
		// Pages q..h-1 are all needed; done when every one is known.
		var known uint64
		for p := range r.known {
			if p >= q && p < h {
				known++
			}
		}
		if _, ok := r.known[q]; ok && known == h-q {
			return nil
		}
		var want []uint64
		for p := range r.known {
			if p < q || p >= h || r.done[p] {
				continue
			}
			// Page q holds lo only if the page after it is known to start
			// later; otherwise a page between may hold it.
			if _, nextKnown := r.start(p + 1); p > q || nextKnown {
				want = append(want, p)
			}
		}
		var nodes []int
		for i, x := range r.head.Index {
			last := h
			if i+1 < len(r.head.Index) {
				last = r.head.Index[i+1].Page
			}
			if nodesDone[i] || last <= q || (i+1 < len(r.head.Index) && r.head.Index[i+1].Start <= lo) {
				continue
			}
			var listed uint64 // of its pages, those known
			for p := range r.known {
				if p >= x.Page && p < last {
					listed++
				}
			}
			if listed < last-x.Page {
				nodes = append(nodes, i)
			}
		}
		if len(nodes) > 0 {
			want = nil // the index names every page: no page is fetched to learn links
		}
		if len(want) == 0 && len(nodes) == 0 {
			return fmt.Errorf("%w: pages between %d and %d are not reachable through links", ErrInvalidLog, q, h)
		}
		slices.Sort(want)
		for len(want) > 0 || len(nodes) > 0 {
			n := min(len(want), r.opts.Concurrency)
			m := min(len(nodes), r.opts.Concurrency-n)
			r.stats.Rounds++
			if err := r.discoverRound(ctx, want[:n], nodes[:m]); err != nil {
				return err
			}
			for _, i := range nodes[:m] {
				nodesDone[i] = true
			}
			want, nodes = want[n:], nodes[m:]
		}
	}
}

// discoverRound fetches pages and index nodes at once: one round.
func (r *catchUp) discoverRound(ctx context.Context, pages []uint64, nodes []int) error {
	ixs := make([]*pager.Index, len(nodes))
	ierrs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for k, i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ixs[k], ierrs[k] = r.fetchIndex(ctx, i)
		}()
	}
	err := r.fetchRound(ctx, pages)
	wg.Wait()
	errs := []error{err}
	for k, ix := range ixs {
		if ierrs[k] != nil {
			errs = append(errs, ierrs[k])
			continue
		}
		r.stats.IndexNodes++
		for j, l := range ix.Pages {
			if err := r.addLink(ix.First+uint64(j), l); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (r *catchUp) fetchRound(ctx context.Context, want []uint64) error {
	return r.fetchWave(ctx, want, func(p uint64, pg *pager.Page, size int) error {
		r.done[p] = true
		r.win.keep(p, pg, size, true)
		return r.learn(pg)
	})
}

// fetchWave fetches the pages want at once, each in its own request, and
// hands each to got as it arrives: one round.
func (r *catchUp) fetchWave(ctx context.Context, want []uint64, got func(p uint64, pg *pager.Page, size int) error) error {
	type result struct {
		p    uint64
		pg   *pager.Page
		size int
		err  error
	}
	out := make(chan result, len(want))
	for _, p := range want {
		l, num := r.slot(p)
		go func() {
			pg, size, err := r.fetchPage(ctx, l.Cid, num, l.Start, false)
			out <- result{p, pg, size, err}
		}()
	}
	var errs []error
	for range want {
		g := <-out
		if g.err == nil {
			r.stats.Pages++
			g.err = got(g.p, g.pg, g.size)
		}
		if g.err != nil {
			errs = append(errs, g.err)
		}
	}
	return errors.Join(errs...)
}

// ready is the done of a pending message that is ready when queued.
var ready = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

type pending struct {
	msg Message
	// hashed: the page does not carry the id (a v2 inline entry); the
	// payload's hash is the id.
	hashed bool
	page   uint64
	size   int64 // of the wire payload
	wire   []byte
	ref    cid.Cid
	done   chan struct{}
	err    error
}

// stream delivers messages in order. A producer walks the pages oldest
// first, starting pointer payload fetches (bounded) as it goes; the
// consumer waits for each in turn, verifies its id and delivers it.
func (r *catchUp) stream(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *pending, 4*r.opts.Concurrency)
	sem := make(chan struct{}, r.opts.Concurrency)
	var wg sync.WaitGroup
	var payloads atomic.Int64
	var prodErr, aheadErr error
	at := r.cur.Seq
	first := r.firstSlot(r.from())
	stop := context.AfterFunc(ctx, func() { r.win.fail(ctx.Err()) })
	defer stop()
	if !r.budgetChosen && first < r.end() {
		r.win.shrinkIfLong(first, r.end()-1, func(q uint64) uint64 { return r.slotStart(q+1) - r.slotStart(q) }, 2*r.opts.MemoryBudget, LongMemoryBudget)
	}
	ahead := make(chan struct{})
	go func() {
		defer close(ahead)
		if aheadErr = r.fetchAhead(ctx, first); aheadErr != nil {
			r.win.fail(aheadErr)
		}
	}()
	go func() {
		defer close(queue)
		prodErr = r.produce(ctx, first, at, queue, sem, &wg, &payloads)
	}()
	lo := r.from()
	var err error
	for it := range queue {
		<-it.done
		if err == nil {
			if err = r.take(it, lo); err != nil {
				cancel()
			}
		}
		if it.msg.BodyFile != "" {
			os.Remove(it.msg.BodyFile) // unless the receiver moved it
		}
	}
	wg.Wait()
	cancel()
	<-ahead
	r.stats.Payloads = int(payloads.Load())
	if payloads.Load() > 0 {
		r.stats.Rounds++
	}
	if err != nil {
		return err
	}
	if prodErr != nil {
		return prodErr
	}
	if aheadErr != nil && !errors.Is(aheadErr, context.Canceled) {
		return aheadErr
	}
	return nil
}

// firstPage is the page holding sequence lo: discovery fetched every page
// from it to the head.
func (r *catchUp) firstPage(lo uint64) uint64 {
	first := r.head.Number
	for p := r.head.Number; p > 0; p-- {
		if s, _ := r.start(p); s <= lo {
			break
		}
		first = p - 1
	}
	return first
}

// fetchAhead fills the window with the sealed pages and tail pieces from
// slot first on that are not held, in waves of parallel fetches, oldest
// first, as memory frees: each wave is a round.
func (r *catchUp) fetchAhead(ctx context.Context, first uint64) error {
	for next := first; next < r.end(); {
		wave, err := r.win.nextWave(ctx, next, r.end()-1, r.opts.Concurrency, func(q uint64) uint64 { return r.slotStart(q+1) - r.slotStart(q) })
		if err != nil || len(wave) == 0 {
			return err
		}
		r.stats.Rounds++ // the only writer while streaming; read after <-ahead
		err = r.fetchWave(ctx, wave, func(p uint64, pg *pager.Page, size int) error {
			r.win.keep(p, pg, size, false)
			return nil
		})
		if err != nil {
			return err
		}
		next = wave[len(wave)-1] + 1
	}
	return nil
}

// produce queues the messages from the cursor at on, from slot first on;
// the consumer moves r.cur meanwhile, so the producer never reads it.
func (r *catchUp) produce(ctx context.Context, first, at uint64, queue chan<- *pending, sem chan struct{}, wg *sync.WaitGroup, payloads *atomic.Int64) error {
	lo := r.from()
	// Chunks of messages verified and prepared at once: one per core, the
	// consumer taking one.
	workers := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for q := first; q <= r.end(); q++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		pg := r.head
		if q < r.end() {
			var err error
			if pg, err = r.win.take(ctx, q); err != nil {
				return err
			}
			if next := r.slotStart(q + 1); pg.Last()+1 != next && q < r.head.Number {
				return fmt.Errorf("%w: page %d ends at sequence %d but page %d starts at %d", ErrInvalidLog, pg.Number, pg.Last(), pg.Number+1, next)
			} else if pg.Last()+1 != next {
				return fmt.Errorf("%w: the piece of page %d at sequence %d ends at %d but the next piece or the head starts at %d", ErrInvalidLog, pg.Number, pg.Start, pg.Last(), next)
			}
		}
		p := pg.Number
		// Inline messages are verified and prepared by a worker a chunk at
		// a time; a chunk's messages share one done, closed when the whole
		// chunk is: the consumer then waits once a chunk, not once a
		// message, and the workers share even the last page.
		var inline []*pending
		var chunkDone chan struct{}
		startChunk := func() error {
			if len(inline) == 0 {
				return nil
			}
			chunk, done := inline, chunkDone
			inline, chunkDone = nil, nil
			return goBounded(ctx, workers, wg, func() {
				defer close(done)
				for _, it := range chunk {
					if it.err = verifyMessage(it); it.err == nil {
						it.err = r.prepare(it)
					}
				}
			})
		}
		items := make([]*pending, 0, len(pg.Entries))
		for i := range pg.Entries {
			e := &pg.Entries[i]
			seq := pg.Start + uint64(i)
			if seq < lo {
				continue
			}
			it := &pending{msg: Message{Seq: seq, ID: e.ID}, page: p, done: ready}
			it.hashed = e.Inline() && pg.V() != pager.V1
			if seq == at && !it.hashed {
				// The message at the cursor is only compared by id, which
				// its verified page gives: its payload is not fetched again.
			} else if e.Inline() {
				it.wire = e.Payload
				if r.opts.Prepare == nil {
					it.err = verifyMessage(it)
				} else {
					if chunkDone == nil {
						chunkDone = make(chan struct{})
					}
					it.done = chunkDone
					if inline = append(inline, it); len(inline) == prepareChunk {
						if err := startChunk(); err != nil {
							return err
						}
					}
				}
			} else {
				it.ref, it.done = e.Ref, make(chan struct{})
				payloads.Add(1)
				err := goBounded(ctx, sem, wg, func() {
					defer close(it.done)
					if it.err = r.readPointer(ctx, it); it.err == nil {
						it.err = r.prepare(it)
					}
				})
				if err != nil {
					return err
				}
			}
			items = append(items, it)
		}
		if err := startChunk(); err != nil {
			return err
		}
		for _, it := range items {
			select {
			case queue <- it:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// prepareChunk is the most inline messages a worker verifies and
// prepares at once (ReadOptions.Prepare).
const prepareChunk = 64

// goBounded runs f in a goroutine counted in wg once sem has room for it,
// or returns ctx's error.
func goBounded(ctx context.Context, sem chan struct{}, wg *sync.WaitGroup, f func()) error {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { <-sem }()
		f()
	}()
	return nil
}

// prepare runs ReadOptions.Prepare on a verified message.
func (r *catchUp) prepare(it *pending) error {
	if r.opts.Prepare == nil {
		return nil
	}
	return r.opts.Prepare(&it.msg)
}

// take checks a fetched message against the cursor and delivers it.
func (r *catchUp) take(it *pending, lo uint64) error {
	if it.err != nil {
		return it.err
	}
	if it.msg.Seq == r.cur.Seq && r.cur.Seq > 0 {
		if it.msg.ID != r.cur.ID && r.cur.ID != (mvds.MessageID{}) {
			return fmt.Errorf("%w: message %d is now %s, this reader read %s", ErrFork, it.msg.Seq, it.msg.ID, r.cur.ID)
		}
		return nil
	}
	if it.msg.Seq < lo {
		return nil
	}
	if err := r.deliver(it.msg); err != nil {
		return err
	}
	r.cur.Seq, r.cur.ID = it.msg.Seq, it.msg.ID
	r.stats.Messages++
	r.stats.PayloadBytes += it.size
	return nil
}

// readPointer reads the payload of a pointer entry and verifies it: into
// memory, or for a large message into a file.
func (r *catchUp) readPointer(ctx context.Context, it *pending) error {
	fail := func(err error) error {
		if errors.Is(err, cas.ErrMalformedFile) {
			return fmt.Errorf("%w: message %d on page %d: %w", ErrInvalidLog, it.msg.Seq, it.page, err)
		}
		return fmt.Errorf("message %d: %w", it.msg.Seq, err)
	}
	rd, size, err := cas.OpenPayload(ctx, r.get, it.ref, MaxBody+maxWireHead)
	if err != nil {
		return fail(err)
	}
	defer rd.Close() // ends its background fetches before the catch-up goes on
	if size <= LargeMessage {
		if it.wire, err = io.ReadAll(rd); err != nil {
			return fail(err)
		}
		return verifyMessage(it)
	}
	m, n, path, err := spool(rd, size, it.msg.ID, r.opts.SpoolDir)
	if err != nil {
		return fmt.Errorf("message %d on page %d: %w", it.msg.Seq, it.page, err)
	}
	it.msg.Message, it.msg.Ref, it.msg.BodySize, it.msg.BodyFile = m, it.ref, n, path
	it.size = int64(size)
	return nil
}

// verifyMessage decodes a wire payload and checks it hashes to its id.
func verifyMessage(it *pending) error {
	m, _, err := mvds.UnmarshalMessage(it.wire)
	if err != nil {
		return fmt.Errorf("%w: message %d on page %d: %w", ErrInvalidLog, it.msg.Seq, it.page, err)
	}
	if it.hashed {
		it.msg.ID = m.ID()
	} else if id := m.ID(); !bytes.Equal(id[:], it.msg.ID[:]) {
		return fmt.Errorf("%w: message %d on page %d: id %s does not match its payload (which hashes to %s)", ErrInvalidLog, it.msg.Seq, it.page, it.msg.ID, id)
	}
	it.msg.Message, it.msg.Wire, it.msg.BodySize = m, it.wire, uint64(len(m.Body))
	it.size = int64(len(it.wire))
	return nil
}

// entryID is the message id of an entry of a page of format v: the id it
// carries, or for a v2 inline entry the hash of its payload.
func entryID(e *pager.Entry, v uint64) (mvds.MessageID, error) {
	if v == pager.V1 || !e.Inline() {
		return e.ID, nil
	}
	m, _, err := mvds.UnmarshalMessage(e.Payload)
	if err != nil {
		return mvds.MessageID{}, fmt.Errorf("%w: an inline payload: %w", ErrInvalidLog, err)
	}
	return m.ID(), nil
}
