package cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	unixfsio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// ChunkSize is the UnixFS chunk size of payload files: a payload of at most
// this many bytes is a single raw block.
const ChunkSize = 256 << 10

var rawPrefix = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: 32}

// PayloadBlocks computes H2, the CID of payload stored as a UnixFS file
// (CIDv1, raw leaves, SHA2-256, 256 KiB chunks, balanced layout), and the
// blocks that store it. The result equals what `ipfs add --cid-version=1
// --raw-leaves` produces.
func PayloadBlocks(payload []byte) (cid.Cid, []blocks.Block, error) {
	if len(payload) <= ChunkSize {
		// The importer's result for one chunk is the raw leaf itself; this
		// shortcut is proven equal to it in the tests.
		c, err := rawPrefix.Sum(payload)
		if err != nil {
			return cid.Undef, nil, fmt.Errorf("cas: hash payload: %w", err)
		}
		return c, []blocks.Block{NewBlock(c, payload)}, nil
	}
	return importPayload(payload)
}

func importPayload(payload []byte) (cid.Cid, []blocks.Block, error) {
	col := &collector{}
	c, err := layout(bytes.NewReader(payload), col)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("cas: import payload: %w", err)
	}
	return c, col.blocks, nil
}

// layout cuts r into a UnixFS file (CIDv1, raw leaves, SHA2-256, 256 KiB
// chunks, balanced layout) whose blocks go to ds.
func layout(r io.Reader, ds ipld.DAGService) (cid.Cid, error) {
	params := helpers.DagBuilderParams{
		Maxlinks:   helpers.DefaultLinksPerBlock,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256},
		Dagserv:    ds,
	}
	db, err := params.New(chunker.NewSizeSplitter(r, ChunkSize))
	if err != nil {
		return cid.Undef, err
	}
	root, err := balanced.Layout(db)
	if err != nil {
		return cid.Undef, err
	}
	return root.Cid(), nil
}

// ImportPayload stores the payload read from r in s as PayloadBlocks
// would, in batches, so that memory stays bounded whatever its size. It
// returns H2.
func ImportPayload(ctx context.Context, s Store, r io.Reader) (cid.Cid, error) {
	col := &collector{flush: func(blks []blocks.Block) error { return s.Put(ctx, blks) }}
	c, err := layout(r, col)
	if err == nil {
		err = col.put()
	}
	if err != nil {
		return cid.Undef, fmt.Errorf("cas: import payload: %w", err)
	}
	return c, nil
}

// collector is the write side of an ipld.DAGService that keeps blocks or,
// with flush set, hands them on in batches.
type collector struct {
	blocks []blocks.Block
	size   int
	flush  func([]blocks.Block) error
}

func (c *collector) Add(_ context.Context, n ipld.Node) error {
	c.blocks = append(c.blocks, n)
	c.size += len(n.RawData())
	if c.flush != nil && c.size >= PutBatch {
		return c.put()
	}
	return nil
}

func (c *collector) put() error {
	err := c.flush(c.blocks)
	c.blocks, c.size = nil, 0
	return err
}

func (c *collector) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		if err := c.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (c *collector) Get(context.Context, cid.Cid) (ipld.Node, error) {
	return nil, ipld.ErrNotFound{}
}

func (c *collector) GetMany(context.Context, []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption)
	close(ch)
	return ch
}

func (c *collector) Remove(context.Context, cid.Cid) error       { return nil }
func (c *collector) RemoveMany(context.Context, []cid.Cid) error { return nil }

// ReadPayload reads the payload H2 names from g, which should verify
// hashes (see Verify). A payload over limit bytes is refused with
// ErrTooLarge before it is assembled.
func ReadPayload(ctx context.Context, g Getter, c cid.Cid, limit int) ([]byte, error) {
	r, size, err := OpenPayload(ctx, g, c, uint64(limit))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := io.Copy(buf, r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// OpenPayload opens the payload H2 names in g, which should verify hashes
// (see Verify), for reading as a stream, and returns its size. A payload
// over limit bytes is refused with ErrTooLarge. The reader returns an
// error, never short data, when the file holds fewer or more bytes than
// its root says.
func OpenPayload(ctx context.Context, g Getter, c cid.Cid, limit uint64) (io.ReadCloser, uint64, error) {
	tooLarge := func(n uint64) error {
		return fmt.Errorf("cas: read payload %s: %w: %d bytes, limit %d", c, ErrTooLarge, n, limit)
	}
	switch c.Prefix().Codec {
	case cid.Raw:
		b, err := g.Get(ctx, c)
		if err != nil {
			return nil, 0, fmt.Errorf("cas: read payload %s: %w", c, err)
		}
		if uint64(len(b)) > limit {
			return nil, 0, tooLarge(uint64(len(b)))
		}
		return io.NopCloser(bytes.NewReader(b)), uint64(len(b)), nil
	case cid.DagProtobuf:
		// The root alone, then as many blocks as its size takes. The
		// reader prefetches in the background; Close ends that and waits.
		ctx, cancel := context.WithCancel(ctx)
		ng := &fileGetter{g: g, budget: 1, sizes: map[cid.Cid]uint64{}}
		stop := func() {
			ng.mu.Lock()
			ng.closed = true // no fetch starts from now on
			ng.mu.Unlock()
			cancel()
			ng.wg.Wait()
		}
		root, err := ng.Get(ctx, c)
		if err != nil {
			stop()
			return nil, 0, fmt.Errorf("cas: read payload %s: %w", c, err)
		}
		r, err := unixfsio.NewDagReader(ctx, root, ng)
		if err != nil {
			stop()
			return nil, 0, fmt.Errorf("cas: read payload %s: %w", c, err)
		}
		if r.Size() > limit {
			stop()
			return nil, 0, tooLarge(r.Size())
		}
		ng.mu.Lock()
		ng.size, ng.max = r.Size(), FileBlocks(r.Size())+fileSlack
		ng.budget = ng.max - 1
		ng.mu.Unlock()
		return &exactReader{r: r, c: c, size: r.Size(), stop: stop}, r.Size(), nil
	}
	return nil, 0, fmt.Errorf("cas: read payload %s: codec %#x is neither raw nor dag-pb", c, c.Prefix().Codec)
}

// exactReader reads a file that must hold exactly size bytes.
type exactReader struct {
	r    io.Reader
	c    cid.Cid
	size uint64
	read uint64
	stop func()
}

// Close stops the file's background fetches and waits for them.
func (e *exactReader) Close() error { e.stop(); return nil }

func (e *exactReader) Read(p []byte) (int, error) {
	if uint64(len(p)) > e.size-e.read+1 {
		p = p[:e.size-e.read+1] // one byte more shows a file that is too long
	}
	n, err := e.r.Read(p)
	e.read += uint64(n)
	switch {
	case e.read > e.size:
		return 0, fmt.Errorf("cas: read payload %s: file holds more than the %d bytes it says", e.c, e.size)
	case err == io.EOF && e.read < e.size:
		return n, fmt.Errorf("cas: read payload %s: file is %d bytes but says %d", e.c, e.read, e.size)
	case err != nil && err != io.EOF:
		return n, fmt.Errorf("cas: read payload %s: %w", e.c, err)
	}
	return n, err
}

// FileBlocks is how many blocks the format's layout stores a payload of
// size bytes in as a dag-pb file: ceil(size/ChunkSize) raw leaves (at
// least one) under levels of nodes of up to helpers.DefaultLinksPerBlock
// links, up to one root.
func FileBlocks(size uint64) uint64 {
	leaves := max(1, size/ChunkSize)
	if size > ChunkSize && size%ChunkSize != 0 {
		leaves++
	}
	fanout := uint64(helpers.DefaultLinksPerBlock)
	total, level := leaves, leaves
	for {
		level = (level + fanout - 1) / fanout
		total += level
		if level == 1 {
			return total
		}
	}
}

// fileSlack is how many blocks beyond FileBlocks a payload file may take.
const fileSlack = 2

// fileGetter decodes the UnixFS blocks a payload file is made of, and
// refuses what the format's layout does not make: more blocks than the
// budget, nodes that are not file nodes or have more links than a node
// holds, sizes that do not add up within a node or disagree with what the
// parent said. Fetches are counted, not blocks: a block linked twice
// counts twice, as it may be fetched twice.
var errClosed = errors.New("cas: payload reader closed")

type fileGetter struct {
	g      Getter
	wg     sync.WaitGroup // GetMany's fetches
	mu     sync.Mutex
	closed bool               // the reader is closed: no more fetches
	budget uint64             // blocks it may still fetch
	size   uint64             // the file's, as its root says
	max    uint64             // blocks it may fetch in all
	sizes  map[cid.Cid]uint64 // the sizes parents gave their children
}

func (n *fileGetter) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, errClosed
	}
	if n.budget == 0 {
		n.mu.Unlock()
		return nil, fmt.Errorf("%w: more than the %d blocks a file of %d bytes takes", ErrMalformedFile, n.max, n.size)
	}
	n.budget--
	n.mu.Unlock()
	b, err := n.g.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	blk := NewBlock(c, b)
	switch c.Prefix().Codec {
	case cid.Raw:
		if err := n.check(c, uint64(len(b)), nil, nil); err != nil {
			return nil, err
		}
		return merkledag.DecodeRawBlock(blk)
	case cid.DagProtobuf:
		nd, err := merkledag.DecodeProtobufBlock(blk)
		if err != nil {
			return nil, err
		}
		pn, ok := nd.(*merkledag.ProtoNode)
		if !ok {
			return nil, fmt.Errorf("block %s: %w: not a dag-pb node", c, ErrMalformedFile)
		}
		fsn, err := unixfs.FSNodeFromBytes(pn.Data())
		if err != nil {
			return nil, fmt.Errorf("block %s: %w: %w", c, ErrMalformedFile, err)
		}
		if t := fsn.Type(); t != unixfs.TFile && t != unixfs.TRaw {
			return nil, fmt.Errorf("block %s: %w: UnixFS type %s, not a file", c, ErrMalformedFile, t)
		}
		links, sizes := pn.Links(), fsn.BlockSizes()
		if len(links) > helpers.DefaultLinksPerBlock {
			return nil, fmt.Errorf("block %s: %w: %d links, a node has at most %d", c, ErrMalformedFile, len(links), helpers.DefaultLinksPerBlock)
		}
		if len(links) != len(sizes) {
			return nil, fmt.Errorf("block %s: %w: %d links but %d block sizes", c, ErrMalformedFile, len(links), len(sizes))
		}
		sum := uint64(len(fsn.Data()))
		for _, s := range sizes {
			var carry uint64
			if sum, carry = bits.Add64(sum, s, 0); carry != 0 {
				return nil, fmt.Errorf("block %s: %w: block sizes overflow", c, ErrMalformedFile)
			}
		}
		if sum != fsn.FileSize() {
			return nil, fmt.Errorf("block %s: %w: says %d bytes, its data and blocks hold %d", c, ErrMalformedFile, fsn.FileSize(), sum)
		}
		if err := n.check(c, sum, links, sizes); err != nil {
			return nil, err
		}
		return pn, nil
	}
	return nil, fmt.Errorf("block %s: %w: codec %#x is not part of a UnixFS file", c, ErrMalformedFile, c.Prefix().Codec)
}

// check compares the size of block c with what its parent said, and
// notes the sizes it gives its children, links[i] sizes[i] bytes.
func (n *fileGetter) check(c cid.Cid, size uint64, links []*ipld.Link, sizes []uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if want, ok := n.sizes[c]; ok && want != size {
		return fmt.Errorf("block %s: %w: %d bytes, its parent says %d", c, ErrMalformedFile, size, want)
	}
	for i, l := range links {
		s := sizes[i]
		if want, ok := n.sizes[l.Cid]; ok && want != s {
			return fmt.Errorf("block %s: %w: links %s as %d and as %d bytes", c, ErrMalformedFile, l.Cid, want, s)
		}
		n.sizes[l.Cid] = s
	}
	return nil
}

func (n *fileGetter) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption, len(cs))
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		ch <- &ipld.NodeOption{Err: errClosed}
		close(ch)
		return ch
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(ch)
		for _, c := range cs {
			if err := ctx.Err(); err != nil {
				ch <- &ipld.NodeOption{Err: err}
				return
			}
			nd, err := n.Get(ctx, c)
			ch <- &ipld.NodeOption{Node: nd, Err: err}
		}
	}()
	return ch
}
