package cas_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	mdtest "github.com/ipfs/boxo/ipld/merkledag/test"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"rlog/cas"
	"rlog/cas/castest"
)

func TestMemoryStore(t *testing.T) { castest.Run(t, cas.NewMemory()) }

func TestEmbeddedStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	s, err := cas.OpenEmbedded(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	castest.Run(t, s)
	c, blks, _ := cas.PayloadBlocks([]byte("kept"))
	if err := s.Put(context.Background(), blks); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := cas.OpenEmbedded(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if b, err := ro.Get(context.Background(), c); err != nil || string(b) != "kept" {
		t.Fatalf("read-only reopen: %q %v", b, err)
	}
	if err := ro.Put(context.Background(), blks); !errors.Is(err, cas.ErrReadOnly) {
		t.Fatalf("put on read-only store: %v", err)
	}
}

func TestOpenMissingReadOnlyStoreFails(t *testing.T) {
	if _, err := cas.OpenEmbedded(filepath.Join(t.TempDir(), "nope"), true); err == nil {
		t.Fatal("opening a missing store read-only succeeded")
	}
}

// importerCID runs boxo's UnixFS importer as `ipfs add --cid-version=1
// --raw-leaves` configures it.
func importerCID(t *testing.T, payload []byte) cid.Cid {
	params := helpers.DagBuilderParams{
		Maxlinks: helpers.DefaultLinksPerBlock, RawLeaves: true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256},
		Dagserv:    mdtest.Mock(),
	}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(payload), 256<<10))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return nd.Cid()
}

func TestPayloadCIDIsUnixFSAdd(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, n := range []int{0, 1, 1024, 256<<10 - 1, 256 << 10, 256<<10 + 1, 5 << 20} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		c, blks, err := cas.PayloadBlocks(payload)
		if err != nil {
			t.Fatal(err)
		}
		if want := importerCID(t, payload); !c.Equals(want) {
			t.Errorf("%d bytes: H2 %s, importer %s", n, c, want)
		}
		if wantRaw := n <= 256<<10; (c.Prefix().Codec == cid.Raw) != wantRaw {
			t.Errorf("%d bytes: codec %#x", n, c.Prefix().Codec)
		}
		s := cas.NewMemory()
		if err := s.Put(context.Background(), blks); err != nil {
			t.Fatal(err)
		}
		back, err := cas.ReadPayload(context.Background(), cas.Verify(s), c, 8<<20)
		if err != nil || !bytes.Equal(back, payload) {
			t.Fatalf("%d bytes: read back %d bytes, %v", n, len(back), err)
		}
		if n > 1024 {
			if _, err := cas.ReadPayload(context.Background(), s, c, 1024); !errors.Is(err, cas.ErrTooLarge) {
				t.Errorf("%d bytes over a 1 KiB limit: %v", n, err)
			}
		}
	}
	// The empty file's CID as every IPFS implementation writes it.
	c, _, _ := cas.PayloadBlocks(nil)
	if c.String() != "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku" {
		t.Errorf("empty payload H2 %s", c)
	}
}

func TestVerifyRejectsTamperedBlocks(t *testing.T) {
	s := cas.NewMemory()
	c, blks, _ := cas.PayloadBlocks(bytes.Repeat([]byte("x"), 300<<10))
	s.Put(context.Background(), blks)
	leaf := blks[0].Cid()
	s.Set(leaf, []byte("tampered"))
	_, err := cas.ReadPayload(context.Background(), cas.Verify(s), c, 1<<20)
	if !errors.Is(err, cas.ErrHashMismatch) {
		t.Fatalf("tampered leaf: got %v, want ErrHashMismatch", err)
	}
}

// batchStore records the largest batch it was given.
type batchStore struct {
	*cas.Memory
	largest int
}

func (b *batchStore) Put(ctx context.Context, blks []blocks.Block) error {
	n := 0
	for _, bl := range blks {
		n += len(bl.RawData())
	}
	b.largest = max(b.largest, n)
	return b.Memory.Put(ctx, blks)
}

// A streamed import stores exactly the file PayloadBlocks describes, in
// bounded batches, and OpenPayload streams it back.
func TestImportPayloadStreams(t *testing.T) {
	ctx := context.Background()
	// 0, one chunk, one chunk + 1, and past one level of links (174 chunks).
	for _, n := range []int{1, cas.ChunkSize, cas.ChunkSize + 1, 180 * cas.ChunkSize} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7 / 5)
		}
		want, wantBlocks, err := cas.PayloadBlocks(p)
		if err != nil {
			t.Fatal(err)
		}
		s := &batchStore{Memory: cas.NewMemory()}
		got, err := cas.ImportPayload(ctx, s, bytes.NewReader(p))
		if err != nil || !got.Equals(want) {
			t.Fatalf("%d bytes: import %s, %v; want %s", n, got, err, want)
		}
		for _, b := range wantBlocks {
			if ok, _ := s.Has(ctx, b.Cid()); !ok {
				t.Fatalf("%d bytes: block %s not stored", n, b.Cid())
			}
		}
		if s.largest > 17<<20 {
			t.Fatalf("%d bytes: a batch of %d bytes", n, s.largest)
		}
		r, size, err := cas.OpenPayload(ctx, cas.Verify(s), got, uint64(n))
		if err != nil || size != uint64(n) {
			t.Fatalf("open: %d %v", size, err)
		}
		back, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(back, p) {
			t.Fatalf("%d bytes: read back %d bytes, %v", n, len(back), err)
		}
		if _, _, err := cas.OpenPayload(ctx, s, got, uint64(n-1)); !errors.Is(err, cas.ErrTooLarge) {
			t.Fatalf("limit %d: %v, want ErrTooLarge", n-1, err)
		}
	}
}
