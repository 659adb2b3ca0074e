package remotelog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/boxo/ipns"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/cas"
	"rlog/internal/vfs"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog/internal/journal"
)

// WriterConfig configures a Writer. Store, Publisher and Resolver are the
// backends the log is published to; Resolver reads the published record
// back for the fork check (usually the same backend as Publisher).
type WriterConfig struct {
	Dir   string // journal, page index and state
	Key   crypto.PrivKey
	Store cas.Store
	// Local is where large payloads are stored when they are appended: the
	// repo's own block store. Publish copies them to Store when they
	// differ. Default: Store.
	Local     cas.Store
	Publisher namesys.Publisher
	Resolver  namesys.Resolver
	Policy    pager.Policy
	Lifetime  time.Duration // record end of life, from publish time
	TTL       time.Duration // record cache hint
	Addrs     []string      // multiaddrs written in the head page's "a"
	Now       func() time.Time

	// fs holds the journal, the page index and the state: the real file
	// system but in the power-cut test (nil: vfs.OS).
	fs vfs.FS
}

// Defaults for records: a mostly-offline writer must not see its log
// vanish, so records live a year; readers look again after a minute.
const (
	DefaultLifetime = 365 * 24 * time.Hour
	DefaultTTL      = time.Minute
)

func (c *WriterConfig) validate() error {
	switch {
	case c.Key == nil || c.Store == nil || c.Publisher == nil || c.Resolver == nil:
		return errors.New("key, store, publisher and resolver are required")
	case c.Lifetime <= 0 || c.TTL < 0:
		return fmt.Errorf("lifetime %s and ttl %s must be positive", c.Lifetime, c.TTL)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Local == nil {
		c.Local = c.Store
	}
	c.fs = vfs.Or(c.fs)
	return c.Policy.Validate()
}

// Writer appends messages to the durable local log and publishes it.
// One process at a time may hold a Writer on a directory (the repo lock).
type Writer struct {
	cfg   WriterConfig
	name  ipns.Name
	log   *journal.Journal
	pages *pageIndex
	st    state
	// idx caches the index nodes (v2) by first page and page count.
	idx map[[2]uint64]pager.IndexLink

	// duplicate rule: timestamps never decrease, and ids of the newest
	// second are remembered so a repeat gets the next second.
	lastTS  int64
	run     map[uint64]struct{} // runKey of each id of the newest second
	runDone bool

	// superseded is the head the last publish replaced: deleted by the
	// next one, so that a reader who resolved the record before the last
	// publish still finds the head it was given.
	superseded cid.Cid
	lastPage   sealedPage

	// wire holds the wire payloads of the append under way, until the
	// journal has them.
	wire []byte
}

// OpenWriter opens the local log in cfg.Dir.
func OpenWriter(cfg WriterConfig) (*Writer, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("remotelog: open writer: %w", err)
	}
	name, err := namesys.NameOf(cfg.Key.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("remotelog: open writer: %w", err)
	}
	w := &Writer{cfg: cfg, name: name}
	if err := finishSwaps(cfg.fs, cfg.Dir); err != nil {
		return nil, fmt.Errorf("remotelog: open writer: %w", err)
	}
	if err := cfg.fs.MkdirAll(filepath.Join(cfg.Dir, "log"), 0o755); err != nil {
		return nil, fmt.Errorf("remotelog: open writer: %w", err)
	}
	if w.log, err = journal.OpenIn(cfg.fs, filepath.Join(cfg.Dir, "log"), false); err != nil {
		return nil, fmt.Errorf("remotelog: open writer: %w", err)
	}
	if w.st, err = loadState(cfg.fs, w.statePath()); err != nil {
		w.log.Close()
		return nil, fmt.Errorf("remotelog: open writer: %w", err)
	}
	if w.pages, err = openPageIndex(cfg.fs, filepath.Join(cfg.Dir, "pages"), w.st.Sealed, false); err != nil {
		w.log.Close()
		return nil, fmt.Errorf("remotelog: open writer: %w", err)
	}
	if err := w.loadLastTS(); err != nil {
		w.Close()
		return nil, fmt.Errorf("remotelog: open writer: %w", err)
	}
	return w, nil
}

// loadLastTS reads the newest message's timestamp from the log.
func (w *Writer) loadLastTS() error {
	w.lastTS = 0
	if n := w.log.Len(); n > 0 {
		ts, _, err := w.stamp(n)
		if err != nil {
			return err
		}
		w.lastTS = ts
	}
	return nil
}

func (w *Writer) statePath() string { return filepath.Join(w.cfg.Dir, "state.json") }

// Name is the log's IPNS name.
func (w *Writer) Name() ipns.Name { return w.name }

// Len is the number of messages in the local log.
func (w *Writer) Len() uint64 { return w.log.Len() }

// Published is the number of messages covered by the last publish.
func (w *Writer) Published() uint64 { return w.st.Published }

// stamp reads the timestamp and id of local message seq.
func (w *Writer) stamp(seq uint64) (int64, mvds.MessageID, error) {
	e, err := w.getEntry(context.Background(), seq)
	if err != nil {
		return 0, mvds.MessageID{}, err
	}
	if e.IsRef() {
		return e.Timestamp, e.ID, nil
	}
	m, _, err := mvds.UnmarshalMessage(e.Payload)
	if err != nil {
		return 0, mvds.MessageID{}, fmt.Errorf("local entry %d: %w", seq, err)
	}
	return m.Timestamp, e.ID, nil
}

// Appended describes one appended message. The body of a large message is
// not held: Body is nil and BodySize says how long it is.
type Appended struct {
	Seq      uint64
	ID       mvds.MessageID
	BodySize uint64
	mvds.Message
}

// IsLarge reports whether the message's body is not held (see LargeMessage).
func (a Appended) IsLarge() bool { return a.Body == nil && a.BodySize > 0 }

// Append adds one message per body to group and returns once they are
// durable on disk: all of them, or none. Timestamps are Unix seconds, as
// the MVDS reference sets them, and never decrease within a log. The same
// body appended twice to a group within one second would get the same id;
// the writer then gives it the next second, so no two entries of a log
// share an id. A body whose message is large (see LargeMessage) is stored
// in the block store first.
func (w *Writer) Append(ctx context.Context, group []byte, bodies [][]byte) ([]Appended, error) {
	return w.AppendMeta(ctx, group, nil, bodies)
}

// AppendMeta is Append with MVDS metadata md (4/MVDS-META) on each message:
// the parents a message of a group conversation names. The metadata is in
// the log (not part of the id). md must not be ephemeral (an ephemeral
// message is never logged); a large message cannot carry metadata.
func (w *Writer) AppendMeta(ctx context.Context, group []byte, md *mvds.Metadata, bodies [][]byte) ([]Appended, error) {
	if md != nil && md.Ephemeral {
		return nil, fmt.Errorf("remotelog: append: an ephemeral message is never logged: send it over MVDS")
	}
	defer holdStore(w.cfg.Local)() // a large payload is garbage until its entry is durable
	out := make([]Appended, 0, len(bodies))
	es := make([]journal.Entry, 0, len(bodies))
	defer w.wireFor(group, md, bodies)()
	for _, body := range bodies {
		e, a, err := w.entry(ctx, group, md, body, nil, uint64(len(body)))
		if err != nil {
			return nil, fmt.Errorf("remotelog: append: %w", err)
		}
		if !e.IsRef() {
			a.Body = body
		}
		es, out = append(es, e), append(out, a)
	}
	return w.commit(es, out)
}

// AppendFile adds one message whose body is the content of the file at
// path, streamed: a large body is never held in memory. It returns once the
// message is durable.
func (w *Writer) AppendFile(ctx context.Context, group []byte, path string) (Appended, error) {
	defer holdStore(w.cfg.Local)()
	f, err := os.Open(path)
	if err != nil {
		return Appended{}, fmt.Errorf("remotelog: append: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Appended{}, fmt.Errorf("remotelog: append: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Appended{}, fmt.Errorf("remotelog: append: %s is not a regular file", path)
	}
	defer w.wireFor(nil, nil, nil)()
	e, a, err := w.entry(ctx, group, nil, nil, f, uint64(st.Size()))
	if err != nil {
		return Appended{}, fmt.Errorf("remotelog: append %s: %w", path, err)
	}
	out, err := w.commit([]journal.Entry{e}, []Appended{a})
	if err != nil {
		return Appended{}, err
	}
	return out[0], nil
}

// wireFor makes w.wire ready for the wire payloads of bodies, appended
// to group with md: room for those encoded into it (not the large ones,
// which go to the block store). The function it returns, called once the
// append is done or failed, lets go of a buffer grown over maxWireKept.
func (w *Writer) wireFor(group []byte, md *mvds.Metadata, bodies [][]byte) (done func()) {
	head := mvds.Message{GroupID: group, Timestamp: math.MaxInt64, Metadata: md}
	headLen := mvds.WireHeadLen(head, 0)
	need := 0
	for _, b := range bodies {
		if n := headLen + 8 + uint64(len(b)); n <= LargeMessage { // 8: the most the body's length adds
			need += int(n)
		}
	}
	if cap(w.wire) < need {
		w.wire = make([]byte, 0, need)
	}
	w.wire = w.wire[:0]
	return func() {
		if cap(w.wire) > maxWireKept {
			w.wire = nil
		}
	}
}

func (w *Writer) commit(es []journal.Entry, out []Appended) ([]Appended, error) {
	first, err := w.log.Append(es)
	if err != nil {
		w.run, w.runDone = nil, false // reload from disk next time
		return nil, fmt.Errorf("remotelog: append: %w", err)
	}
	for i := range out {
		out[i].Seq = first + uint64(i)
	}
	return out, nil
}

// resetRun empties the ids of the newest second: the map is kept for
// the next second's (a fast writer fills it again), unless a burst made
// it large.
func (w *Writer) resetRun() {
	if len(w.run) > 1<<16 {
		w.run = nil
		return
	}
	clear(w.run)
}

// runKey is what the duplicate rule remembers of an id: 8 of its bytes.
// Two ids that share them take the next second as a repeat does, which
// keeps ids unique: a needless second now and then (one in 2^64), in a
// quarter of the memory a million messages a second would hold.
func runKey(id mvds.MessageID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// maxWireKept is the most w.wire keeps between appends.
const maxWireKept = 4 << 20

// entry makes the journal entry of one message of group whose body is the
// size bytes of file, or mem when file is nil, applying the duplicate
// rule. A large message's payload is stored in the local block store; a
// small one's is encoded into w.wire, valid until the next append.
func (w *Writer) entry(ctx context.Context, group []byte, md *mvds.Metadata, mem []byte, file io.ReadSeeker, size uint64) (journal.Entry, Appended, error) {
	if err := ctx.Err(); err != nil {
		return journal.Entry{}, Appended{}, err
	}
	if size > MaxBody {
		return journal.Entry{}, Appended{}, fmt.Errorf("%w: a body of %d bytes is over the limit of %d", ErrTooLarge, size, uint64(MaxBody))
	}
	m := mvds.Message{GroupID: group, Timestamp: max(w.cfg.Now().Unix(), w.lastTS)}
	if m.Timestamp > w.lastTS {
		w.lastTS, w.runDone = m.Timestamp, true
		w.resetRun()
	}
	if err := w.loadRun(); err != nil {
		return journal.Entry{}, Appended{}, err
	}
	large := mvds.WireHeadLen(m, size)+size > LargeMessage
	if large && md != nil {
		return journal.Entry{}, Appended{}, fmt.Errorf("a large message (%d bytes) cannot carry MVDS metadata (parents)", size)
	}
	body := mem
	switch {
	case large && file == nil:
		file = bytes.NewReader(mem)
	case !large && file != nil:
		body = make([]byte, size)
		if _, err := io.ReadFull(file, body); err != nil {
			return journal.Entry{}, Appended{}, fmt.Errorf("read the body: %w", err)
		}
	}
	var e journal.Entry
	for {
		if large {
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return journal.Entry{}, Appended{}, fmt.Errorf("read the body: %w", err)
			}
			var err error
			if e, err = importLarge(ctx, w.cfg.Local, m, file, size); err != nil {
				return journal.Entry{}, Appended{}, err
			}
		} else {
			m.Body, m.Metadata = body, md
			e = journal.Entry{ID: m.ID()}
		}
		if _, dup := w.run[runKey(e.ID)]; !dup {
			break
		}
		m.Timestamp = w.lastTS + 1
		w.lastTS = m.Timestamp
		w.resetRun()
	}
	if w.run == nil {
		w.run = map[uint64]struct{}{}
	}
	w.run[runKey(e.ID)] = struct{}{}
	if !large {
		at := len(w.wire)
		w.wire = m.AppendMarshal(w.wire)
		e.Payload = w.wire[at:len(w.wire):len(w.wire)]
	}
	m.Body = nil
	return e, Appended{ID: e.ID, BodySize: size, Message: m}, nil
}

// importLarge stores the payload of m, whose body is the size bytes of r,
// as a file in s, and returns its journal entry.
func importLarge(ctx context.Context, s cas.Store, m mvds.Message, r io.Reader, size uint64) (journal.Entry, error) {
	head := mvds.WireHead(m, size)
	h := mvds.IDHash(m.GroupID, m.Timestamp)
	body := &countingReader{r: io.TeeReader(io.LimitReader(r, int64(size)+1), h)}
	ref, err := cas.ImportPayload(ctx, s, io.MultiReader(bytes.NewReader(head), body))
	if err != nil {
		return journal.Entry{}, err
	}
	if body.n != size {
		return journal.Entry{}, fmt.Errorf("the body was to be %d bytes but %d were read (did the file change?)", size, body.n)
	}
	// The journal is fsynced when the entry is appended; the blocks it
	// names must be durable before.
	if err := syncStore(ctx, s); err != nil {
		return journal.Entry{}, err
	}
	e := journal.Entry{Ref: ref, Size: uint64(len(head)) + size, Timestamp: m.Timestamp}
	h.Sum(e.ID[:0])
	return e, nil
}

// syncStore makes every Put so far durable, in a store that buffers them.
func syncStore(ctx context.Context, s cas.Store) error {
	if s, ok := s.(interface{ Sync(context.Context) error }); ok {
		return s.Sync(ctx)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

// loadRun reads the ids of the newest second from the log, once.
func (w *Writer) loadRun() error {
	if w.runDone {
		return nil
	}
	w.resetRun()
	if w.run == nil {
		w.run = map[uint64]struct{}{}
	}
	for seq := w.log.Len(); seq > 0; seq-- {
		ts, id, err := w.stamp(seq)
		if err != nil {
			return err
		}
		if ts != w.lastTS {
			break
		}
		w.run[runKey(id)] = struct{}{}
	}
	w.runDone = true
	return nil
}

// Scan calls f for local messages from..to in order. A large message comes
// without its body and wire payload: its Ref names the payload file in the
// local block store (see OpenBody).
func (w *Writer) Scan(from, to uint64, f func(m Message) error) error {
	return w.scanEntries(context.Background(), from, to, func(seq uint64, e journal.Entry) error {
		if e.IsRef() {
			m, size, err := w.largeHead(context.Background(), e)
			if err != nil {
				return fmt.Errorf("local entry %d: %w", seq, err)
			}
			return f(Message{Seq: seq, ID: e.ID, Ref: e.Ref, BodySize: size, Message: m})
		}
		m, _, err := mvds.UnmarshalMessage(e.Payload)
		if err != nil {
			return fmt.Errorf("local entry %d: %w", seq, err)
		}
		return f(Message{Seq: seq, ID: e.ID, Wire: e.Payload, BodySize: uint64(len(m.Body)), Message: m})
	})
}

// largeHead reads a large local message's group, timestamp and metadata.
func (w *Writer) largeHead(ctx context.Context, e journal.Entry) (mvds.Message, uint64, error) {
	r, size, err := cas.OpenPayload(ctx, w.cfg.Local, e.Ref, e.Size)
	if err != nil {
		return mvds.Message{}, 0, err
	}
	defer r.Close()
	return mvds.ReadWireHead(bufio.NewReaderSize(r, 4096), size)
}

// OpenBody streams the body of local message m, as Scan gave it; the
// caller closes it.
func (w *Writer) OpenBody(ctx context.Context, m Message) (io.ReadCloser, error) {
	if !m.Ref.Defined() {
		return io.NopCloser(bytes.NewReader(m.Body)), nil
	}
	r, _, _, err := openBody(ctx, cas.Verify(w.cfg.Local), m.Ref, m.BodySize+maxWireHead)
	return r, err
}

// Close releases the log.
func (w *Writer) Close() error {
	return errors.Join(w.log.Close(), w.pages.close())
}

// PublishOptions tune one publish.
type PublishOptions struct {
	// Progress, when set, is called as entries are paginated.
	Progress func(done, total uint64)
}

// PublishResult reports a publish.
type PublishResult struct {
	Name     ipns.Name
	Head     cid.Cid
	Messages uint64 // in the published log
	New      uint64 // published by this call
	Pages    uint64
	// IndexNodes is how many index nodes (format v2) the head lists.
	IndexNodes uint64
	RecordSeq  uint64
	Blocks     int // blocks put
	Bytes      int // bytes put
}

// flushBytes bounds the blocks a publish holds in memory before putting.
// The embedded store copies a batch into its write log and its memtable, so
// a batch costs about three times its size: 4 MiB keeps the publish of a
// million messages within a phone's memory.
const flushBytes = 4 << 20

// packBytes is flushBytes for sealed pages put in packs: the store writes
// one batch while the next is paginated, so two are in memory at once.
const packBytes = 1 << 20

// Publish makes everything appended so far readable under the log's name:
// it paginates new entries, puts every new block, saves its state, and only
// then signs and publishes a record, so the name never points at a block
// that is not stored. A publish interrupted anywhere is finished by the
// next one. It refuses with ErrBehind or ErrDiverged rather than fork the
// published log.
func (w *Writer) Publish(ctx context.Context, opts PublishOptions) (PublishResult, error) {
	defer holdStore(w.cfg.Store)() // its blocks are garbage until the state names them
	res, err := w.publish(ctx, opts)
	if err != nil {
		w.pages.reset()
		w.idx = nil // it may name pages that were not committed
		return res, fmt.Errorf("remotelog: publish %s: %w", w.name, err)
	}
	return res, nil
}

func (w *Writer) publish(ctx context.Context, opts PublishOptions) (PublishResult, error) {
	res := PublishResult{Name: w.name}
	remoteSeq, err := w.checkPublished(ctx)
	if err != nil {
		return res, err
	}
	n := w.log.Len()
	if n == 0 {
		return res, errors.New("the log is empty: append a message first")
	}
	pol := w.cfg.Policy
	var pending []blocks.Block
	pendingBytes := 0
	put := func(blks ...blocks.Block) error {
		for _, b := range blks {
			pending = append(pending, b)
			pendingBytes += len(b.RawData())
			res.Blocks++
			res.Bytes += len(b.RawData())
		}
		if pendingBytes < flushBytes {
			return nil
		}
		err := w.cfg.Store.Put(ctx, pending)
		pending, pendingBytes = nil, 0
		return err
	}
	// Sealed pages are kept for good: a store that packs them apart
	// (the embedded store) writes them once, in the order they come.
	packer, _ := w.cfg.Store.(cas.Packer)
	var sealer *pageSealer
	var pages, packing []blocks.Block // packing: handed to the store last
	pagesBytes, packedBlocks, packedBytes := 0, 0, 0
	putPacked := func() error {
		err := packer.PutPacked(ctx, pages)
		for _, b := range packing { // the store is done with them: the call waited
			sealer.free(b.RawData())
		}
		packing, pages, pagesBytes = pages, packing[:0], 0
		return err
	}
	putPage := func(b blocks.Block) error {
		if packer == nil {
			return put(b)
		}
		pages = append(pages, b)
		pagesBytes += len(b.RawData())
		packedBlocks++
		packedBytes += len(b.RawData())
		if pagesBytes < packBytes {
			return nil
		}
		return putPacked()
	}

	ver := pol.FormatVersion()
	links, err := w.skipLinks(ver, w.st.Sealed)
	if err != nil {
		return res, err
	}
	open := pager.NewOpen(pol.PageVersion(), w.st.Sealed, w.st.OpenStart, links)
	total := n - w.st.OpenStart + 1
	// Sealed v2 pages packed by the store are encoded on other cores while
	// the scan goes on: put only touches what this goroutine does then.
	sealer = newPageSealer(packer != nil && ver != pager.V1, func(b []byte, c cid.Cid, start uint64) error {
		if err := putPage(cas.NewBlock(c, b)); err != nil {
			return err
		}
		w.pages.add(pager.Link{Cid: c, Start: start})
		return nil
	})
	arena := sealer.arena() // the open page's payloads
	// The journal is read through one buffer: what a page keeps of an
	// entry is copied into its arena.
	err = w.log.Each(w.st.OpenStart, n, func(seq uint64, e journal.Entry) error {
		it := pager.Item{ID: e.ID, Payload: e.Payload, Ref: e.Ref, Size: e.Size}
		kept := false // it.Payload is a copy of its own, not the read buffer's
		if e.IsRef() {
			if seq > w.st.Published && w.cfg.Local != w.cfg.Store {
				if err := copyPayload(ctx, w.cfg.Store, w.cfg.Local, e.Ref, e.Size); err != nil {
					return fmt.Errorf("message %d: %w", seq, err)
				}
			}
		} else if !pol.InlineSealed(len(e.Payload)) {
			if seq > w.st.Published {
				// Its blocks are stored after this call: a copy, which
				// the page keeps too (no arena copy below).
				it.Payload, kept = bytes.Clone(e.Payload), true
			}
			c, blks, err := cas.PayloadBlocks(it.Payload)
			if err != nil {
				return err
			}
			it.Ref = c
			if seq > w.st.Published {
				if err := put(blks...); err != nil {
					return err
				}
			}
		}
		if !open.Fits(pol, it.PayloadSize()) {
			pg := open.SealInto(pol, arena.entries)
			arena.entries = pg.Entries
			if err := sealer.seal(pg, arena); err != nil {
				return err
			}
			arena = sealer.arena()
			links, err := w.skipLinks(ver, open.Number+1)
			if err != nil {
				return err
			}
			open.Next(seq, links)
		}
		switch n := it.PayloadSize(); {
		case e.IsRef():
		case n > pol.HeadInlineLimit: // a pointer in every form of the page
			it.Payload, it.Size = nil, uint64(n)
		case !kept: // inline in a page, or in the head
			it.Payload = arena.copy(it.Payload)
		}
		open.Add(pol, it)
		if done := seq - w.st.OpenStart + 1; opts.Progress != nil && (done%1024 == 0 || seq == n) {
			opts.Progress(done, total)
		}
		return nil
	})
	if werr := sealer.wait(); err == nil {
		err = werr
	} else if werr != nil && werr != err { // seal returns the failure wait does
		err = errors.Join(err, werr)
	}
	if err != nil {
		return res, err
	}
	res.Blocks += packedBlocks
	res.Bytes += packedBytes
	window, err := w.pages.window(open.Number, pol.Window)
	if err != nil {
		return res, err
	}
	var index []pager.IndexLink
	if ver != pager.V1 {
		if index, err = w.indexLinks(open.Number, put); err != nil {
			return res, err
		}
	}
	var tail []pager.Link
	for _, pc := range open.TailPieces(pol) {
		b, c, err := pager.Encode(pc)
		if err != nil {
			return res, err
		}
		if err := put(cas.NewBlock(c, b)); err != nil {
			return res, err
		}
		tail = append(tail, pager.Link{Cid: c, Start: pc.Start})
	}
	headPage := open.HeadPage(pol, window, index, tail, w.cfg.Addrs)
	var hint namesys.Hint
	if ver == pager.V3 {
		var node cid.Cid
		if open.Number > 0 {
			nb, c, err := pager.EncodeWindowNode(&pager.WindowNode{Number: open.Number, Window: window, Index: index})
			if err != nil {
				return res, err
			}
			if err := put(cas.NewBlock(c, nb)); err != nil {
				return res, err
			}
			node = c
		}
		headPage = open.HeadPageV3(pol, node, tail, w.cfg.Addrs)
		hint = namesys.Hint{PageStart: headPage.PageStart(), Node: node}
	}
	hb, head, err := pager.Encode(headPage)
	if err != nil {
		return res, err
	}
	if err := put(cas.NewBlock(head, hb)); err != nil {
		return res, err
	}
	if len(pending) > 0 {
		if err := w.cfg.Store.Put(ctx, pending); err != nil {
			return res, err
		}
	}
	if len(pages) > 0 {
		if err := putPacked(); err != nil {
			return res, err
		}
	}
	crashAt("publish-packed") // pages written to a pack, not synced or indexed
	if err := syncStore(ctx, w.cfg.Store); err != nil {
		return res, err
	}
	// A store that pins (Kubo) moves its pin from the old head to the new.
	if p, ok := w.cfg.Store.(pinner); ok {
		old, _ := cid.Decode(w.st.Head)
		if err := p.Pin(ctx, old, head); err != nil {
			return res, err
		}
	}
	if err := w.pages.flush(); err != nil {
		return res, err
	}
	next := state{
		Published: n,
		Head:      head.String(),
		RecordSeq: max(w.st.RecordSeq, remoteSeq) + 1,
		Sealed:    w.pages.total(),
		OpenStart: open.Start,
		Prev:      w.st.Head,
	}
	// The sequence number is durable before any record carries it.
	if err := saveState(w.cfg.fs, w.statePath(), next); err != nil {
		return res, err
	}
	crashAt("publish-state")
	old := w.st
	w.st = next
	w.pages.commit()
	now := w.cfg.Now()
	raw, err := namesys.NewRecordHint(w.cfg.Key, head, next.RecordSeq, now.Add(w.cfg.Lifetime), w.cfg.TTL, hint)
	if err != nil {
		return res, err
	}
	if err := w.cfg.Publisher.Publish(ctx, w.name, raw); err != nil {
		return res, err
	}
	crashAt("publish-record")
	// The previous head's open form is referenced by nothing now; a reader
	// who resolved the previous record may be reading it: it goes at the
	// next publish (left behind by a crash, it is harmless garbage).
	if d, ok := w.cfg.Store.(cas.Deleter); ok && old.Head != "" && old.Head != next.Head {
		if w.superseded.Defined() && w.superseded != head {
			_ = d.Delete(ctx, w.superseded)
		}
		w.superseded = cid.Undef
		if c, err := cid.Decode(old.Head); err == nil {
			w.superseded = c
		}
	}
	// The sealed pages are durable in the local store and the state names
	// them: the journal keeps only the open page and what follows.
	if err := w.compact(ctx); err != nil {
		return res, err
	}
	res.Head, res.Messages, res.New = head, n, n-old.Published
	res.Pages, res.RecordSeq, res.IndexNodes = open.Number+1, next.RecordSeq, uint64(len(index))
	return res, nil
}

// skipLinks are the links of page p in format v: v1's skip links, none in v2.
func (w *Writer) skipLinks(v, p uint64) ([]pager.Link, error) {
	if v != pager.V1 {
		return nil, nil
	}
	return w.pages.links(p)
}

// IndexGroup is how many pages a v2 index node of this writer lists.
const IndexGroup = 1024

// indexLinks returns a v2 head's index links over the sealed pages 0 to
// sealed-1, giving put the index nodes not made before. Every node lists
// IndexGroup pages but the last, which lists the rest; a node is made
// again only when the pages it lists change.
func (w *Writer) indexLinks(sealed uint64, put func(...blocks.Block) error) ([]pager.IndexLink, error) {
	if w.idx == nil {
		w.idx = map[[2]uint64]pager.IndexLink{}
	}
	var out []pager.IndexLink
	for first := uint64(0); first < sealed; first += IndexGroup {
		n := min(IndexGroup, sealed-first)
		if l, ok := w.idx[[2]uint64{first, n}]; ok {
			out = append(out, l)
			continue
		}
		ix := &pager.Index{First: first, Pages: make([]pager.Link, n)}
		for i := range ix.Pages {
			l, err := w.pages.get(first + uint64(i))
			if err != nil {
				return nil, err
			}
			ix.Pages[i] = l
		}
		b, c, err := pager.EncodeIndex(ix)
		if err != nil {
			return nil, err
		}
		if err := put(cas.NewBlock(c, b)); err != nil {
			return nil, err
		}
		for k := range w.idx { // the node it replaces
			if k[0] == first {
				delete(w.idx, k)
			}
		}
		l := pager.IndexLink{Cid: c, Page: first, Start: ix.Pages[0].Start}
		w.idx[[2]uint64{first, n}] = l
		out = append(out, l)
	}
	return out, nil
}

// pinner is the optional ability of a store to keep exactly the DAG under
// the current head.
type pinner interface {
	Pin(ctx context.Context, old, head cid.Cid) error
}

// checkPublished compares the published log with the local one and
// returns the published record's sequence number (0 when unpublished).
func (w *Writer) checkPublished(ctx context.Context) (uint64, error) {
	rec, err := namesys.Resolve(ctx, w.cfg.Resolver, w.name, w.cfg.Now())
	if errors.Is(err, namesys.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the published record: %w", err)
	}
	if err := w.checkFork(ctx, rec); err != nil {
		return 0, err
	}
	b, err := cas.Verify(w.cfg.Store).Get(ctx, rec.Value)
	if err != nil {
		return 0, fmt.Errorf("read the published head %s: %w", rec.Value, err)
	}
	pg, err := pager.Decode(b)
	if err != nil {
		return 0, fmt.Errorf("read the published head %s: %w", rec.Value, err)
	}
	remoteN := pg.Last()
	if remoteN > w.log.Len() {
		return 0, fmt.Errorf("%w: it has %d messages, the local log %d; run `rlog recover` to bring the published messages back into the local log, then publish", ErrBehind, remoteN, w.log.Len())
	}
	local, err := w.getEntry(ctx, remoteN)
	if err != nil {
		return 0, err
	}
	last, err := entryID(&pg.Entries[len(pg.Entries)-1], pg.V())
	if err != nil {
		return 0, fmt.Errorf("read the published head %s: %w", rec.Value, err)
	}
	if local.ID != last {
		return 0, fmt.Errorf("%w: message %d is %x there and %x here; run `rlog recover` to rebuild the local log on the published one (local messages it lacks are appended after it), then publish", ErrDiverged, remoteN, last[:8], local.ID[:8])
	}
	return rec.Sequence, nil
}

// checkFork refuses to publish over a fork: a published record with the
// sequence of this writer's last record but another head (the key
// published from another device), or the other record of a fork that the
// name store keeps (a restored backup of that device) and Recover has not
// merged.
func (w *Writer) checkFork(ctx context.Context, published *namesys.Record) error {
	const wayOut = "run `rlog recover` to merge the other log into the local one (no message is lost), then `rlog publish`: its newer record supersedes both"
	if w.st.Head != "" {
		own, _ := cid.Decode(w.st.Head)
		err := namesys.Compare(&namesys.Record{Name: w.name, Sequence: w.st.RecordSeq, Value: own}, published)
		if errors.Is(err, ErrFork) {
			return fmt.Errorf("%w (this device published the one held; the other is published now): %s", err, wayOut)
		}
	}
	other, err := w.unmergedFork(ctx, published)
	if err != nil {
		return err
	}
	if other != nil {
		return fmt.Errorf("%w (the one held is published; the other came with a backup): %s", namesys.Compare(published, other), wayOut)
	}
	return nil
}

// unmergedFork is the other record of a fork of published that the name
// store keeps (namesys.ForkResolver) and Recover has not merged, or nil.
func (w *Writer) unmergedFork(ctx context.Context, published *namesys.Record) (*namesys.Record, error) {
	fr, ok := w.cfg.Resolver.(namesys.ForkResolver)
	if !ok {
		return nil, nil
	}
	raw, err := fr.ResolveFork(ctx, w.name)
	if errors.Is(err, namesys.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the fork record: %w", err)
	}
	other, err := namesys.Parse(w.name, raw, w.cfg.Now())
	if err != nil || other.Sequence < w.st.RecordSeq || other.Value.String() == w.st.Merged {
		return nil, nil // expired, superseded by this writer, or merged
	}
	if !errors.Is(namesys.Compare(published, other), ErrFork) {
		return nil, nil
	}
	return other, nil
}
