package remotelog_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

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
	cases := []struct {
		name  string
		build func(f *forge)
		want  error
		text  string
		ok    int // verified messages before the bad one, delivered
	}{
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
		}, remotelog.ErrInvalidLog, "says it is page 0 but is linked as page 1", 0},
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
			b = bytes.Replace(b, []byte{0x61, 'v', 0x01}, []byte{0x61, 'v', 0x02}, 1)
			f.publishHead(f.put(b))
		}, pager.ErrVersion, "version: 2", 0},
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
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newForge(t)
			tc.build(f)
			n, err := f.read(remotelog.Cursor{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v\nwant %v containing %q", err, tc.want, tc.text)
			}
			if n != tc.ok {
				t.Fatalf("%d messages delivered from a hostile log, want %d", n, tc.ok)
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
