package cas

import (
	"bytes"
	"context"
	"fmt"
	"io"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
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
	params := helpers.DagBuilderParams{
		Maxlinks:   helpers.DefaultLinksPerBlock,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256},
		Dagserv:    col,
	}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(payload), ChunkSize))
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("cas: import payload: %w", err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("cas: import payload: %w", err)
	}
	return root.Cid(), col.blocks, nil
}

// collector is the write side of an ipld.DAGService that keeps blocks.
type collector struct{ blocks []blocks.Block }

func (c *collector) Add(_ context.Context, n ipld.Node) error {
	c.blocks = append(c.blocks, n)
	return nil
}

func (c *collector) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		c.blocks = append(c.blocks, n)
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
	switch c.Prefix().Codec {
	case cid.Raw:
		b, err := g.Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("cas: read payload %s: %w", c, err)
		}
		if len(b) > limit {
			return nil, fmt.Errorf("cas: read payload %s: %w: %d bytes, limit %d", c, ErrTooLarge, len(b), limit)
		}
		return b, nil
	case cid.DagProtobuf:
		ng := nodeGetter{g}
		root, err := ng.Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("cas: read payload %s: %w", c, err)
		}
		r, err := unixfsio.NewDagReader(ctx, root, ng)
		if err != nil {
			return nil, fmt.Errorf("cas: read payload %s: %w", c, err)
		}
		if r.Size() > uint64(limit) {
			return nil, fmt.Errorf("cas: read payload %s: %w: %d bytes, limit %d", c, ErrTooLarge, r.Size(), limit)
		}
		out := make([]byte, 0, r.Size())
		buf := bytes.NewBuffer(out)
		if _, err := io.Copy(buf, io.LimitReader(r, int64(limit)+1)); err != nil {
			return nil, fmt.Errorf("cas: read payload %s: %w", c, err)
		}
		if buf.Len() != int(r.Size()) {
			return nil, fmt.Errorf("cas: read payload %s: file is %d bytes but says %d", c, buf.Len(), r.Size())
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("cas: read payload %s: codec %#x is neither raw nor dag-pb", c, c.Prefix().Codec)
}

// nodeGetter decodes the UnixFS blocks a payload file is made of.
type nodeGetter struct{ g Getter }

func (n nodeGetter) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	b, err := n.g.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	blk := NewBlock(c, b)
	switch c.Prefix().Codec {
	case cid.Raw:
		return merkledag.DecodeRawBlock(blk)
	case cid.DagProtobuf:
		return merkledag.DecodeProtobufBlock(blk)
	}
	return nil, fmt.Errorf("block %s: codec %#x is not part of a UnixFS file", c, c.Prefix().Codec)
}

func (n nodeGetter) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption, len(cs))
	go func() {
		defer close(ch)
		for _, c := range cs {
			nd, err := n.Get(ctx, c)
			ch <- &ipld.NodeOption{Node: nd, Err: err}
		}
	}()
	return ch
}
