package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/mvds"
	"rlog/pager"
	"rlog/remotelog"
	"rlog/remotelog/internal/journal"
)

// bodyOf returns n pseudo-random bytes for seed.
func bodyOf(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	b := make([]byte, n)
	r.Read(b)
	return b
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readBodies catches up from the start and returns every body, reading
// large ones from the files the reader spools into dir.
func readBodies(t *testing.T, src remotelog.Source, w *world, dir string) [][]byte {
	t.Helper()
	var got [][]byte
	_, _, err := remotelog.CatchUp(context.Background(), src, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now, SpoolDir: dir}, func(m remotelog.Message) error {
		if !m.IsLarge() {
			if uint64(len(m.Body)) != m.BodySize {
				t.Errorf("message %d: body %d bytes, size says %d", m.Seq, len(m.Body), m.BodySize)
			}
			got = append(got, m.Body)
			return nil
		}
		if m.Body != nil || m.Wire != nil || filepath.Dir(m.BodyFile) != dir {
			t.Errorf("large message %d: body in memory or file %q outside %s", m.Seq, m.BodyFile, dir)
		}
		b, err := os.ReadFile(m.BodyFile)
		if err != nil {
			return err
		}
		if uint64(len(b)) != m.BodySize {
			t.Errorf("message %d: file %d bytes, size says %d", m.Seq, len(b), m.BodySize)
		}
		got = append(got, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d spooled files left behind", len(left))
	}
	return got
}

// Bodies around the journal's 4 MiB read chunk and the large-message
// threshold, from memory and from files, come back byte for byte, and a
// large one is stored once: in the block store, not in the journal.
func TestLargeMessagesRoundTrip(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, small(t))
	var want [][]byte
	for i, n := range []int{10, remotelog.LargeMessage - 100, remotelog.LargeMessage + 1, 4<<20 - 1, 4 << 20, 4<<20 + 1, 20} {
		b := bodyOf(uint64(i), n)
		want = append(want, b)
		if i%2 == 0 {
			if _, err := w.w.Append(ctx, group, [][]byte{b}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		a, err := w.w.AppendFile(ctx, group, writeFile(t, b))
		if err != nil {
			t.Fatal(err)
		}
		if m := (mvds.Message{GroupID: group, Timestamp: a.Timestamp, Body: b}); m.ID() != a.ID {
			t.Fatalf("append %d bytes: id %s, the message hashes to %s", n, a.ID, m.ID())
		}
	}
	st, err := os.Stat(filepath.Join(w.cfg.Dir, "log", "journal"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 2<<20 {
		t.Fatalf("journal is %d bytes: large bodies are stored in it", st.Size())
	}
	w.publish(t)
	got := readBodies(t, w, w, t.TempDir())
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d (%d bytes) differs", i+1, len(want[i]))
		}
	}
	// Reopened, the writer knows its newest timestamp and duplicate rule.
	w.reopen(t)
	a, err := w.w.AppendFile(ctx, group, writeFile(t, want[5]))
	if err != nil {
		t.Fatal(err)
	}
	if a.Seq != 8 {
		t.Fatalf("seq %d, want 8", a.Seq)
	}
	var ids = map[mvds.MessageID]bool{}
	if err := w.w.Scan(1, w.w.Len(), func(m remotelog.Message) error {
		if ids[m.ID] {
			t.Errorf("message %d repeats id %s", m.Seq, m.ID)
		}
		ids[m.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A publisher whose backend is not its local store (Kubo) copies large
// payloads there; readers of the backend get them.
func TestLargeMessageCopiedToBackend(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, small(t))
	local := cas.NewMemory()
	w.cfg.Local = local
	w.reopen(t)
	b := bodyOf(7, 3<<20)
	if _, err := w.w.AppendFile(ctx, group, writeFile(t, b)); err != nil {
		t.Fatal(err)
	}
	if n := w.store.Len(); n != 0 {
		t.Fatalf("append put %d blocks in the backend", n)
	}
	w.publish(t)
	got := readBodies(t, w, w, t.TempDir())
	if len(got) != 1 || !bytes.Equal(got[0], b) {
		t.Fatal("the backend does not hold the large message")
	}
}

// A large payload whose bytes do not hash to its id is refused, and its
// spooled file is removed.
func TestLargeMessageTampered(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, small(t))
	b := bodyOf(1, 2<<20)
	a, err := w.w.Append(ctx, group, [][]byte{b})
	if err != nil {
		t.Fatal(err)
	}
	w.publish(t)
	// A log whose entry claims a's id but points at another body's file.
	other := bodyOf(2, 2<<20)
	m := mvds.Message{GroupID: group, Timestamp: a[0].Timestamp, Body: other}
	c, blks, err := cas.PayloadBlocks(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.Put(ctx, blks); err != nil {
		t.Fatal(err)
	}
	pg := &pager.Page{Head: true, Start: 1, Links: []pager.Link{}, Window: []pager.Link{}, Entries: []pager.Entry{{ID: a[0].ID, Ref: c}}}
	hb, head, err := pager.Encode(pg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.Put(ctx, []blocks.Block{cas.NewBlock(head, hb)}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, _, err = remotelog.CatchUp(ctx, w, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Head: head, Now: w.clock.Now, SpoolDir: dir}, func(m remotelog.Message) error {
		t.Errorf("message %d delivered", m.Seq)
		return nil
	})
	if !errors.Is(err, remotelog.ErrInvalidLog) {
		t.Fatalf("err %v, want ErrInvalidLog", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d spooled files left behind", len(left))
	}
}

// An older build stored bodies of up to 64 MiB in the journal itself, and
// could not read back one over 4 MiB: such a repo publishes again, with
// nothing lost.
func TestWedgedJournalPublishes(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 3, 0)
	w.publish(t)
	w.w.Close()
	j, err := journal.Open(filepath.Join(w.cfg.Dir, "log"), false)
	if err != nil {
		t.Fatal(err)
	}
	big := mvds.Message{GroupID: group, Timestamp: w.clock.Now().Unix(), Body: bodyOf(3, 5_000_000)}
	if _, err := j.Append([]journal.Entry{{ID: big.ID(), Payload: big.Marshal()}}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	w.reopen(t)
	w.appendN(t, 3, 2, 0)
	w.publish(t)
	got := readBodies(t, w, w, t.TempDir())
	if len(got) != 6 || !bytes.Equal(got[3], big.Body) || !bytes.Equal(got[5], body(4)) {
		t.Fatalf("%d messages after the wedge", len(got))
	}
}

func TestTooLargeBodyIsRefusedBeforeAnythingIsStored(t *testing.T) {
	w := newWorld(t, small(t))
	// A sparse file: its size, not its bytes, is over the limit.
	p := filepath.Join(t.TempDir(), "huge")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(remotelog.MaxBody + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = w.w.AppendFile(context.Background(), group, p)
	if !errors.Is(err, remotelog.ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	if w.w.Len() != 0 || w.store.Len() != 0 {
		t.Fatal("something was stored")
	}
}

// A writer whose local log was lost (restored from an old copy) recovers
// large messages from the published log into its own store.
func TestLargeMessageRecovered(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, small(t))
	big := bodyOf(9, 3<<20)
	if _, err := w.w.AppendFile(ctx, group, writeFile(t, big)); err != nil {
		t.Fatal(err)
	}
	w.appendN(t, 1, 1, 0)
	w.publish(t)
	w.w.Close()
	// The same key in a new directory, with a local store of its own.
	w.cfg.Dir, w.cfg.Local = t.TempDir(), cas.NewMemory()
	w.reopen(t)
	if _, err := w.w.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if w.w.Len() != 2 {
		t.Fatalf("recovered %d messages, want 2", w.w.Len())
	}
	var got []byte
	err := w.w.Scan(1, 1, func(m remotelog.Message) error {
		r, err := w.w.OpenBody(ctx, m)
		if err != nil {
			return err
		}
		defer r.Close()
		got, err = io.ReadAll(r)
		return err
	})
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("recovered large body: %d bytes, %v", len(got), err)
	}
	w.appendN(t, 2, 1, 0)
	w.publish(t)
}

// A catch-up with nothing new does not fetch the payload of the message at
// its cursor again: the page's id is enough to check for a fork.
func TestNothingNewFetchesNoPayload(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, small(t))
	w.appendN(t, 0, 3, 0)
	if _, err := w.w.Append(ctx, group, [][]byte{bodyOf(4, 300<<10)}); err != nil {
		t.Fatal(err)
	}
	w.publish(t)
	_, cur, st, err := read(t, w, w, remotelog.Cursor{})
	if err != nil || st.Payloads != 1 {
		t.Fatalf("first read: %d payloads, %v", st.Payloads, err)
	}
	got, _, st, err := read(t, w, w, cur)
	if err != nil || len(got) != 0 {
		t.Fatalf("second read: %d messages, %v", len(got), err)
	}
	if st.Payloads != 0 || st.BytesFetched > 64<<10 {
		t.Fatalf("nothing new, yet %d payloads and %d bytes fetched", st.Payloads, st.BytesFetched)
	}
}

// lateGetter fails the test for a Get that comes after the read returned.
type lateGetter struct {
	remotelog.Source
	t    *testing.T
	done atomic.Bool
}

func (l *lateGetter) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if l.done.Load() {
		l.t.Errorf("get %s after the catch-up returned", c)
	}
	return l.Source.Get(ctx, c)
}

// A large payload with a block missing in its middle fails the read, and
// nothing goes on fetching the rest of it once CatchUp has returned.
func TestBrokenLargePayloadLeavesNoFetchBehind(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, small(t))
	b := bodyOf(5, 8<<20)
	a, err := w.w.Append(ctx, group, [][]byte{b})
	if err != nil {
		t.Fatal(err)
	}
	w.publish(t)
	m := mvds.Message{GroupID: group, Timestamp: a[0].Timestamp, Body: b}
	_, blks, err := cas.PayloadBlocks(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	w.store.Delete(ctx, blks[2].Cid()) // the third leaf
	src := &lateGetter{Source: w, t: t}
	_, _, err = remotelog.CatchUp(ctx, src, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now, SpoolDir: t.TempDir()}, func(remotelog.Message) error {
		t.Error("a message was delivered")
		return nil
	})
	src.done.Store(true)
	if !errors.Is(err, cas.ErrNotFound) {
		t.Fatalf("err %v, want a missing block", err)
	}
}
