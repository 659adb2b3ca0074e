package remotelog_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	"github.com/libp2p/go-libp2p/core/crypto"
	mh "github.com/multiformats/go-multihash"

	"rlog/cas"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

// forge builds logs by hand, page by page, to feed a reader with hostile
// stores: every block is stored under its real CID and every record is
// really signed, so only the property under test is wrong.
type forge struct {
	t     *testing.T
	w     *world
	store *cas.Memory
	names *namesys.Memory
	key   crypto.PrivKey
}

func newForge(t *testing.T) *forge {
	w := newWorld(t, small(t))
	return &forge{t: t, w: w, store: w.store, names: w.names, key: w.cfg.Key}
}

func msg(i int) (mvds.MessageID, []byte) {
	m := mvds.Message{GroupID: group, Timestamp: int64(1000 + i), Body: body(i)}
	return m.ID(), m.Marshal()
}

// entries makes inline entries for messages from..to.
func entries(from, to int) []pager.Entry {
	var es []pager.Entry
	for i := from; i <= to; i++ {
		id, wire := msg(i)
		es = append(es, pager.Entry{ID: id, Payload: wire})
	}
	return es
}

// put stores raw bytes under their real DAG-CBOR CID.
func (f *forge) put(b []byte) cid.Cid {
	c, err := pager.PagePrefix.Sum(b)
	if err != nil {
		f.t.Fatal(err)
	}
	f.store.Set(c, b)
	return c
}

func (f *forge) page(pg *pager.Page) cid.Cid {
	b, c, err := pager.Encode(pg)
	if err != nil {
		f.t.Fatalf("forge page: %v", err)
	}
	f.store.Set(c, b)
	return c
}

func (f *forge) record(head cid.Cid, seq uint64, eol time.Time, key crypto.PrivKey) {
	raw, err := namesys.NewRecord(key, head, seq, eol, time.Minute)
	if err != nil {
		f.t.Fatal(err)
	}
	f.names.Publish(context.Background(), f.w.w.Name(), raw)
}

func (f *forge) publishHead(head cid.Cid) { f.record(head, 5, time.Now().Add(time.Hour), f.key) }

func (f *forge) read(cur remotelog.Cursor) (int, error) {
	n := 0
	_, _, err := remotelog.CatchUp(context.Background(), f.w, f.w.w.Name(), cur, remotelog.ReadOptions{}, func(remotelog.Message) error { n++; return nil })
	return n, err
}

// twoPages forges page 0 (messages 1..3) and a head page 1 starting at
// start, whose l[0] says page 0 starts at linkStart.
func (f *forge) twoPages(start uint64, linkStart uint64) cid.Cid {
	p0 := f.page(&pager.Page{Number: 0, Start: 1, Entries: entries(1, 3)})
	return f.page(&pager.Page{Number: 1, Start: start, Entries: entries(int(start), int(start)+1),
		Links: []pager.Link{{Cid: p0, Start: linkStart}}, Head: true, Window: []pager.Link{{Cid: p0, Start: linkStart}}})
}

func TestHostileStores(t *testing.T) {
	otherKey, _ := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
	goodHead := func(f *forge) cid.Cid {
		return f.page(&pager.Page{Number: 0, Start: 1, Entries: entries(1, 3), Head: true, Window: []pager.Link{}})
	}
	cases := []forgeCase{
		{"tampered block", func(f *forge) {
			h := goodHead(f)
			f.store.Set(h, bytes.Replace(encodeHead(f.t, entries(1, 3)), []byte("message"), []byte("massage"), 1))
			f.publishHead(h)
		}, cas.ErrHashMismatch, "does not match its CID", 0},
		{"page s skips", func(f *forge) { f.publishHead(f.twoPages(5, 1)) }, remotelog.ErrInvalidLog, "page 0 ends at sequence 3 but page 1 starts at 5", 0},
		{"page s overlaps", func(f *forge) { f.publishHead(f.twoPages(3, 1)) }, remotelog.ErrInvalidLog, "page 0 ends at sequence 3 but page 1 starts at 3", 0},
		{"link start lies", func(f *forge) { f.publishHead(f.twoPages(4, 2)) }, remotelog.ErrInvalidLog, "page 0 is linked as starting at sequence 2; a log starts at 1", 0},
		{"wrong page number", func(f *forge) {
			p0 := f.page(&pager.Page{Number: 0, Start: 1, Entries: entries(1, 3)})
			// head page 2 says page 1 is p0's block
			h := f.page(&pager.Page{Number: 2, Start: 6, Entries: entries(6, 6), Links: []pager.Link{{Cid: p0, Start: 4}, {Cid: p0, Start: 1}}, Head: true, Window: []pager.Link{}})
			f.publishHead(h)
			// Page 0 is what it is linked as: its messages verify and are
			// delivered before page 1's turn comes.
		}, remotelog.ErrInvalidLog, "says it is page 0 but is linked as page 1", 3},
		{"sealed page as head", func(f *forge) {
			f.publishHead(f.page(&pager.Page{Number: 0, Start: 1, Entries: entries(1, 3)}))
		}, remotelog.ErrInvalidLog, "a sealed page, not a head page", 0},
		{"both c and r", func(f *forge) {
			es := entries(1, 1)
			b := encodeHead(f.t, es)
			b = bytes.Replace(b, []byte{0xa2, 0x61, 'c'}, []byte{0xa3, 0x61, 'c'}, 1)
			ref, _ := pager.RawPrefix.Sum(es[0].Payload)
			tail := append([]byte{0x61, 'r', 0xd8, 0x2a, 0x58, 0x25, 0x00}, ref.Bytes()...)
			i := bytes.Index(b, es[0].ID[:]) + 32
			b = append(b[:i:i], append(tail, b[i:]...)...)
			f.publishHead(f.put(b))
		}, pager.ErrMalformed, "both inline payload", 0},
		{"neither c nor r", func(f *forge) {
			es := entries(1, 1)
			b := encodeHead(f.t, es)
			i := bytes.Index(b, []byte{0xa2, 0x61, 'c'})
			j := i + 3 + 2 + len(es[0].Payload) // map, "c", bytes head (2), payload
			b = append(append(b[:i:i], 0xa1), b[j:]...)
			f.publishHead(f.put(b))
		}, pager.ErrMalformed, "neither inline payload", 0},
		{"id does not match payload", func(f *forge) {
			es := entries(1, 3)
			es[1].ID[0] ^= 1
			f.publishHead(f.page(&pager.Page{Number: 0, Start: 1, Entries: es, Head: true, Window: []pager.Link{}}))
		}, remotelog.ErrInvalidLog, "message 2 on page 0: id", 1},
		{"pointer payload id mismatch", func(f *forge) {
			_, wire := msg(7)
			ref, blks, _ := cas.PayloadBlocks(wire)
			f.store.Put(context.Background(), blks)
			es := entries(1, 1)
			es[0].Payload, es[0].Ref = nil, ref
			f.publishHead(f.page(&pager.Page{Number: 0, Start: 1, Entries: es, Head: true, Window: []pager.Link{}}))
		}, remotelog.ErrInvalidLog, "does not match its payload", 0},
		{"oversized page", func(f *forge) {
			f.publishHead(f.put(make([]byte, pager.MaxPageBytes+1)))
		}, pager.ErrTooLarge, "page too large", 0},
		{"non-canonical CBOR", func(f *forge) {
			b := encodeHead(f.t, entries(1, 1))
			b = bytes.Replace(b, []byte{0x61, 'v', 0x01}, []byte{0x61, 'v', 0x18, 0x01}, 1)
			f.publishHead(f.put(b))
		}, pager.ErrMalformed, "not in shortest form", 0},
		{"unknown version", func(f *forge) {
			b := encodeHead(f.t, entries(1, 1))
			b = bytes.Replace(b, []byte{0x61, 'v', 0x01}, []byte{0x61, 'v', 0x04}, 1)
			f.publishHead(f.put(b))
		}, pager.ErrVersion, "version: 4", 0},
		{"record signed by another key", func(f *forge) {
			f.record(goodHead(f), 5, time.Now().Add(time.Hour), otherKey)
		}, namesys.ErrInvalid, "signature verification failed", 0},
		{"expired record", func(f *forge) {
			f.record(goodHead(f), 5, time.Now().Add(-time.Hour), f.key)
		}, namesys.ErrInvalid, "expired", 0},
		{"missing block", func(f *forge) {
			h := goodHead(f)
			f.store.Delete(context.Background(), h)
			f.publishHead(h)
		}, cas.ErrNotFound, "not found", 0},
	}
	runForged(t, cases)
}

// forgeCase is a log forged by build, read from scratch: the error it
// must fail with (nil: none) and the messages delivered before it.
type forgeCase struct {
	name  string
	build func(f *forge)
	want  error
	text  string
	ok    int // verified messages before the bad one, delivered
}

func runForged(t *testing.T, cases []forgeCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForge(t)
			tc.build(f)
			n, err := f.read(remotelog.Cursor{})
			if tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text)) {
				t.Fatalf("got %v\nwant %v containing %q", err, tc.want, tc.text)
			}
			if n != tc.ok {
				t.Fatalf("%d messages delivered from a forged log, want %d", n, tc.ok)
			}
		})
	}
}

func TestRolledBackRecordIsRefused(t *testing.T) {
	f := newForge(t)
	h := f.page(&pager.Page{Number: 0, Start: 1, Entries: entries(1, 3), Head: true, Window: []pager.Link{}})
	f.record(h, 3, time.Now().Add(time.Hour), f.key)
	n, err := f.read(remotelog.Cursor{RecordSeq: 4})
	if !errors.Is(err, remotelog.ErrRollback) || n != 0 {
		t.Fatalf("got %v after %d messages, want ErrRollback", err, n)
	}
}

// encodeHead encodes a valid head page 0 holding es, for tests to mutate.
func encodeHead(t *testing.T, es []pager.Entry) []byte {
	b, _, err := pager.Encode(&pager.Page{Number: 0, Start: 1, Entries: es, Head: true, Window: []pager.Link{}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileLog is a log made by hand under its own key, as an attacker makes
// one: every block is stored under its real CID and its record is really
// signed, by the attacker's key for the attacker's name.
type hostileLog struct {
	t      testing.TB
	store  *cas.Memory
	names  *namesys.Memory
	key    crypto.PrivKey
	name   ipns.Name
	head   cid.Cid
	record []byte
	order  []cid.Cid // blocks in the order they were stored
}

// hostileNow is the clock of hostile logs' readers: their records are
// valid then.
func hostileNow() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }

func newHostileLog(t testing.TB, seed byte) *hostileLog {
	t.Helper()
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	name, err := namesys.NameOf(key.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return &hostileLog{t: t, store: cas.NewMemory(), names: namesys.NewMemory(), key: key, name: name}
}

func (h *hostileLog) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return h.store.Get(ctx, c) }
func (h *hostileLog) Resolve(ctx context.Context, n ipns.Name) ([]byte, error) {
	return h.names.Resolve(ctx, n)
}

func (h *hostileLog) put(c cid.Cid, b []byte) cid.Cid {
	if ok, _ := h.store.Has(context.Background(), c); !ok {
		h.order = append(h.order, c)
	}
	h.store.Set(c, b)
	return c
}

func (h *hostileLog) page(pg *pager.Page) cid.Cid {
	b, c, err := pager.Encode(pg)
	if err != nil {
		h.t.Fatalf("forge page: %v", err)
	}
	return h.put(c, b)
}

// sign points the log's name at head.
func (h *hostileLog) sign(head cid.Cid) {
	raw, err := namesys.NewRecord(h.key, head, 1, hostileNow().Add(testLifetime), time.Minute)
	if err != nil {
		h.t.Fatal(err)
	}
	h.head, h.record = head, raw
	if err := h.names.Publish(context.Background(), h.name, raw); err != nil {
		h.t.Fatal(err)
	}
}

// car is the log as a backup file: roots head and manifest, then every
// block of the store.
func (h *hostileLog) car() []byte {
	mb, err := cbor.Marshal(struct {
		Name    string `cbor:"name"`
		Record  []byte `cbor:"record"`
		Version int    `cbor:"rlog-backup"`
	}{h.name.String(), h.record, 1})
	if err != nil {
		h.t.Fatal(err)
	}
	mc, err := pager.PagePrefix.Sum(mb)
	if err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, []cid.Cid{h.head, mc}, carv2.WriteAsCarV1(true))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx := context.Background()
	put := func(c cid.Cid, b []byte) {
		if err := w.Put(ctx, c.KeyString(), b); err != nil {
			h.t.Fatal(err)
		}
	}
	put(mc, mb)
	for _, c := range h.order {
		b, _ := h.store.Get(ctx, c)
		put(c, b)
	}
	if err := w.Finalize(); err != nil {
		h.t.Fatal(err)
	}
	return buf.Bytes()
}

// within runs f with a context that ends after d. That deadline is a
// safety net, not what a test asserts: f is expected to return on its own
// long before, and one that does not return even once its context has
// ended fails the test here instead of hanging the suite.
func within(t *testing.T, d time.Duration, f func(ctx context.Context)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	select {
	case <-done:
	case <-time.After(d + 5*time.Second):
		t.Fatalf("still running %v after its context ended: a loop ignores its context", 5*time.Second)
	}
}

// hugeHead is a head page numbered 2^61 (what its sequence allows) with its
// 62 skip links, link j to the block link(j).
func hugeHead(link func(j int) cid.Cid) *pager.Page {
	const p = 1 << 61
	ls := make([]pager.Link, pager.NumLinks(p))
	for j := range ls {
		ls[j] = pager.Link{Cid: link(j), Start: pager.LinkTarget(p, j) + 1}
	}
	return &pager.Page{Number: p, Start: p + 1, Entries: entries(1, 1), Links: ls, Head: true, Window: []pager.Link{}}
}

// TestHugePageNumber: a record signed by an attacker's own key points at a
// head page numbered 2^61 with 62 skip links, 3.7 KB in all. Reading,
// checking and restoring it, from memory, a gateway or a backup file, fetch
// a few pages and refuse it; they never walk the page numbers between.
func TestHugePageNumber(t *testing.T) {
	cases := []struct {
		name string
		link func(p0 cid.Cid, j int) cid.Cid
		want error
		kind string
	}{
		{"links name page 0", func(p0 cid.Cid, _ int) cid.Cid { return p0 }, remotelog.ErrInvalidLog, "inconsistent-log"},
		{"links name missing pages", func(_ cid.Cid, j int) cid.Cid {
			c, _ := pager.PagePrefix.Sum([]byte{byte(j)})
			return c
		}, cas.ErrNotFound, "missing-block"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileLog(t, 7)
			p0 := h.page(&pager.Page{Number: 0, Start: 1, Entries: entries(1, 3)})
			h.sign(h.page(hugeHead(func(j int) cid.Cid { return tc.link(p0, j) })))
			car := h.car()
			path := filepath.Join(t.TempDir(), "log.car")
			if err := os.WriteFile(path, car, 0o600); err != nil {
				t.Fatal(err)
			}
			fromCAR, err := remotelog.OpenCARSource(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer fromCAR.Close()
			srv := httptest.NewServer(&gateway{w: &world{store: h.store, names: h.names}})
			defer srv.Close()
			sources := []struct {
				name string
				src  remotelog.Source
			}{{"memory", h}, {"gateway", remotelog.GatewaySourceWith(srv.URL, srv.Client())}, {"car", fromCAR}}
			for _, s := range sources {
				var n int
				var st remotelog.Stats
				within(t, 10*time.Second, func(ctx context.Context) {
					_, st, err = remotelog.CatchUp(ctx, s.src, h.name, remotelog.Cursor{}, remotelog.ReadOptions{Now: hostileNow}, func(remotelog.Message) error { n++; return nil })
				})
				if !errors.Is(err, tc.want) || n != 0 {
					t.Errorf("read from %s: %d messages, %v; want %v", s.name, n, err, tc.want)
				}
				if st.Pages > 1+pager.NumLinks(1<<61) {
					t.Errorf("read from %s: %d page fetches for a head and its links", s.name, st.Pages)
				}
				var rep remotelog.CheckReport
				within(t, 10*time.Second, func(ctx context.Context) {
					rep = remotelog.Check(ctx, s.src, h.name, cid.Undef, hostileNow)
				})
				if len(rep.Findings) != 1 || rep.Findings[0].Kind != tc.kind {
					t.Errorf("check of %s: %+v, want one %s finding", s.name, rep.Findings, tc.kind)
				}
			}
			within(t, 10*time.Second, func(ctx context.Context) {
				_, err = remotelog.Restore(ctx, bytes.NewReader(car), cas.NewMemory(), namesys.NewMemory(), hostileNow)
			})
			if !errors.Is(err, tc.want) {
				t.Errorf("restore: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestHostileLogHonoursCancel: a reader whose context has ended stops,
// whatever page numbers the log claims.
func TestHostileLogHonoursCancel(t *testing.T) {
	h := newHostileLog(t, 7)
	p0 := h.page(&pager.Page{Number: 0, Start: 1, Entries: entries(1, 3)})
	h.sign(h.page(hugeHead(func(int) cid.Cid { return p0 })))
	var err error
	within(t, 10*time.Second, func(ctx context.Context) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _, err = remotelog.CatchUp(ctx, h, h.name, remotelog.Cursor{}, remotelog.ReadOptions{Now: hostileNow}, func(remotelog.Message) error { return nil })
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read with an ended context: %v, want context.Canceled", err)
	}
}

// capped is a source that counts the blocks read through it and fails
// after max of them, so that a test of a log that would take millions of
// fetches ends.
type capped struct {
	remotelog.Source
	n   atomic.Int64
	max int64
}

func (c *capped) Get(ctx context.Context, k cid.Cid) ([]byte, error) {
	if c.n.Add(1) > c.max {
		return nil, errors.New("test source: too many fetches")
	}
	return c.Source.Get(ctx, k)
}

// fileNode stores a dag-pb UnixFS file node of n links to child, each
// declared size bytes, the node declaring n*size.
func (h *hostileLog) fileNode(child cid.Cid, n int, size uint64) cid.Cid {
	fsn := ft.NewFSNode(ft.TFile)
	nd := merkledag.NodeWithData(nil)
	nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256})
	for range n {
		fsn.AddBlockSize(size)
		if err := nd.AddRawLink("", &ipld.Link{Cid: child, Size: size}); err != nil {
			h.t.Fatal(err)
		}
	}
	data, err := fsn.GetBytes()
	if err != nil {
		h.t.Fatal(err)
	}
	nd.SetData(data)
	return h.put(nd.Cid(), nd.RawData())
}

// TestNestedPointerPayload: a pointer entry names a payload file of two
// levels of links to an empty leaf, declaring 0 bytes: 16 million fetches
// at 4,000 links a node. A reader fetches no more blocks than the declared
// size takes in the format's layout and refuses the log.
func TestNestedPointerPayload(t *testing.T) {
	for _, links := range []int{174, 4000} {
		t.Run(fmt.Sprint(links), func(t *testing.T) {
			h := newHostileLog(t, 8)
			empty, _, _ := cas.PayloadBlocks(nil)
			h.put(empty, nil)
			root := h.fileNode(h.fileNode(empty, links, 0), links, 0)
			es := entries(1, 1)
			es[0].Payload, es[0].Ref = nil, root
			h.sign(h.page(&pager.Page{Number: 0, Start: 1, Entries: es, Head: true, Window: []pager.Link{}}))
			path := filepath.Join(t.TempDir(), "log.car")
			if err := os.WriteFile(path, h.car(), 0o600); err != nil {
				t.Fatal(err)
			}
			fromCAR, err := remotelog.OpenCARSource(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer fromCAR.Close()
			for _, s := range []struct {
				name string
				src  remotelog.Source
			}{{"memory", h}, {"car", fromCAR}} {
				src := &capped{Source: s.src, max: 5000}
				var n int
				within(t, 10*time.Second, func(ctx context.Context) {
					_, _, err = remotelog.CatchUp(ctx, src, h.name, remotelog.Cursor{}, remotelog.ReadOptions{Now: hostileNow}, func(remotelog.Message) error { n++; return nil })
				})
				if !errors.Is(err, remotelog.ErrInvalidLog) || !errors.Is(err, cas.ErrMalformedFile) || n != 0 {
					t.Errorf("read from %s: %d messages, %v; want ErrInvalidLog, ErrMalformedFile", s.name, n, err)
				}
				if got := src.n.Load(); got > 6 { // the head, then root, node, leaf and the slack
					t.Errorf("read from %s: %d blocks fetched", s.name, got)
				}
			}
		})
	}
}
