package cas_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"rlog/cas"
)

// capped counts the blocks read through it and, so that a test of a file
// that would take millions of fetches ends, fails after max of them.
type capped struct {
	g   cas.Getter
	n   atomic.Int64
	max int64
}

var errCapped = errors.New("test getter: too many fetches")

func (c *capped) Get(ctx context.Context, k cid.Cid) ([]byte, error) {
	if c.n.Add(1) > c.max {
		return nil, errCapped
	}
	return c.g.Get(ctx, k)
}

// fileNode stores a dag-pb UnixFS file node whose links are children,
// declaring the sizes sizes for them and filesize for itself.
func fileNode(t *testing.T, s *cas.Memory, children []cid.Cid, sizes []uint64, filesize uint64) cid.Cid {
	t.Helper()
	fsn := ft.NewFSNode(ft.TFile)
	for _, sz := range sizes {
		fsn.AddBlockSize(sz)
	}
	fsn.UpdateFilesize(int64(filesize) - int64(fsn.FileSize()))
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	nd := merkledag.NodeWithData(data)
	nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256})
	for i, c := range children {
		if err := nd.AddRawLink("", &ipld.Link{Cid: c, Size: sizes[min(i, len(sizes)-1)]}); err != nil {
			t.Fatal(err)
		}
	}
	s.Set(nd.Cid(), nd.RawData())
	return nd.Cid()
}

func leaf(t *testing.T, s *cas.Memory, b []byte) cid.Cid {
	c, blks, err := cas.PayloadBlocks(b)
	if err != nil || len(blks) != 1 {
		t.Fatalf("leaf: %v", err)
	}
	s.Set(c, b)
	return c
}

func repeat[T any](v T, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// TestPayloadBlocksAreBounded: a payload file is read in at most the
// blocks its declared size takes in the format's layout (256 KiB raw
// leaves, 174 links a node), and its nodes' sizes must add up. A file of
// two levels of 4,000 links to an empty leaf, declaring 0 bytes, would
// take 16 million fetches; it is refused after a few.
func TestPayloadBlocksAreBounded(t *testing.T) {
	cases := []struct {
		name  string
		build func(s *cas.Memory) cid.Cid
	}{
		{"4000 by 4000 links to an empty leaf", func(s *cas.Memory) cid.Cid {
			empty := leaf(t, s, nil)
			mid := fileNode(t, s, repeat(empty, 4000), repeat(uint64(0), 4000), 0)
			return fileNode(t, s, repeat(mid, 4000), repeat(uint64(0), 4000), 0)
		}},
		{"174 by 174 links to an empty leaf", func(s *cas.Memory) cid.Cid {
			empty := leaf(t, s, nil)
			mid := fileNode(t, s, repeat(empty, 174), repeat(uint64(0), 174), 0)
			return fileNode(t, s, repeat(mid, 174), repeat(uint64(0), 174), 0)
		}},
		{"174 by 174 one-byte leaves", func(s *cas.Memory) cid.Cid {
			one := leaf(t, s, []byte{1})
			mid := fileNode(t, s, repeat(one, 174), repeat(uint64(1), 174), 174)
			return fileNode(t, s, repeat(mid, 174), repeat(uint64(174), 174), 174*174)
		}},
		{"sizes do not add up", func(s *cas.Memory) cid.Cid {
			a := leaf(t, s, []byte("abc"))
			return fileNode(t, s, []cid.Cid{a, a}, []uint64{3, 3}, 5)
		}},
		{"a child is not the size its parent says", func(s *cas.Memory) cid.Cid {
			a, b := leaf(t, s, []byte("abcde")), leaf(t, s, []byte("f"))
			return fileNode(t, s, []cid.Cid{a, b}, []uint64{3, 3}, 6)
		}},
		{"fewer sizes than links", func(s *cas.Memory) cid.Cid {
			a := leaf(t, s, []byte("abc"))
			return fileNode(t, s, []cid.Cid{a, a}, []uint64{3}, 3)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := cas.NewMemory()
			root := tc.build(s)
			g := &capped{g: cas.Verify(s), max: 5_000}
			_, err := cas.ReadPayload(context.Background(), g, root, 1<<30)
			t.Log(err)
			if !errors.Is(err, cas.ErrMalformedFile) {
				t.Errorf("read: %v, want ErrMalformedFile", err)
			}
			if n := g.n.Load(); n > 4 {
				t.Errorf("%d blocks fetched", n)
			}
		})
	}
}

// TestPayloadBlocksNeeded: files the format's layout makes are read in
// exactly their blocks.
func TestPayloadBlocksNeeded(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ size, blocks int }{
		{cas.ChunkSize + 1, 3},
		{174 * cas.ChunkSize, 175},
		{175 * cas.ChunkSize, 178}, // a second level: 175 leaves, 2 nodes, the root
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			p := make([]byte, tc.size) // every chunk different
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			s := cas.NewMemory()
			c, err := cas.ImportPayload(ctx, s, bytes.NewReader(p))
			if err != nil {
				t.Fatal(err)
			}
			g := &capped{g: cas.Verify(s), max: 1 << 20}
			r, _, err := cas.OpenPayload(ctx, g, c, uint64(tc.size))
			if err != nil {
				t.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != int64(tc.size) {
				t.Fatalf("read %d bytes, %v", n, err)
			}
			if n := g.n.Load(); n != int64(tc.blocks) {
				t.Errorf("%d blocks fetched, want %d", n, tc.blocks)
			}
		})
	}
}
