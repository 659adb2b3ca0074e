package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"rlog/internal/vfs/crashfs"
)

func entry(i int) Entry {
	p := []byte(fmt.Sprintf("payload %d %s", i, bytes.Repeat([]byte("x"), i%50)))
	return Entry{ID: sha256.Sum256(p), Payload: p}
}

func appendN(t *testing.T, j *Journal, from, n int) {
	t.Helper()
	var es []Entry
	for i := from; i < from+n; i++ {
		es = append(es, entry(i))
	}
	if _, err := j.Append(es); err != nil {
		t.Fatal(err)
	}
}

func checkAll(t *testing.T, j *Journal, n int) {
	t.Helper()
	if j.Len() != uint64(n) {
		t.Fatalf("len %d, want %d", j.Len(), n)
	}
	seen := 0
	err := j.Scan(1, j.Len(), func(seq uint64, e Entry) error {
		want := entry(int(seq) - 1)
		if e.ID != want.ID || !bytes.Equal(e.Payload, want.Payload) {
			return fmt.Errorf("entry %d differs", seq)
		}
		seen++
		return nil
	})
	if err != nil || seen != n {
		t.Fatalf("scan: %d entries, %v", seen, err)
	}
	if n > 0 {
		e, err := j.Get(uint64(n))
		if err != nil || e.ID != entry(n-1).ID {
			t.Fatalf("get %d: %v", n, err)
		}
	}
}

func TestAppendReopen(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, j, 0, 10)
	appendN(t, j, 10, 5)
	checkAll(t, j, 15)
	j.Close()
	j, err = Open(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, j, 15)
	if _, err := j.Append([]Entry{entry(15)}); err == nil {
		t.Fatal("append on a read-only journal succeeded")
	}
	j.Close()
}

// TestTornTailIsDropped cuts the journal at every byte of its last record:
// the complete records survive, the torn one goes, appends continue.
func TestTornTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	j, _ := Open(dir, false)
	appendN(t, j, 0, 20)
	j.Close()
	full, _ := os.ReadFile(filepath.Join(dir, "journal"))
	idx, _ := os.ReadFile(filepath.Join(dir, "index"))
	lastStart := int(bytesLE(idx[len(idx)-8:]))
	for cut := lastStart; cut < len(full); cut++ {
		os.WriteFile(filepath.Join(dir, "journal"), full[:cut], 0o644)
		os.WriteFile(filepath.Join(dir, "index"), idx, 0o644)
		j, err := Open(dir, false)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		checkAll(t, j, 19)
		appendN(t, j, 19, 1)
		checkAll(t, j, 20)
		j.Close()
	}
}

func bytesLE(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func TestIndexIsRebuilt(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	j, _ := Open(dir, false)
	appendN(t, j, 0, 30)
	j.Close()
	idx, _ := os.ReadFile(filepath.Join(dir, "index"))
	for _, mangled := range [][]byte{nil, idx[:rng.IntN(len(idx))], append(append([]byte{}, idx...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)} {
		os.WriteFile(filepath.Join(dir, "index"), mangled, 0o644)
		j, err := Open(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		checkAll(t, j, 30)
		j.Close()
	}
}

func TestDamageInTheMiddleIsAnError(t *testing.T) {
	dir := t.TempDir()
	j, _ := Open(dir, false)
	appendN(t, j, 0, 10)
	j.Close()
	full, _ := os.ReadFile(filepath.Join(dir, "journal"))
	full[len(magic)+frameHead+3] ^= 0xff // inside record 1's body
	os.WriteFile(filepath.Join(dir, "journal"), full, 0o644)
	os.Remove(filepath.Join(dir, "index"))
	if _, err := Open(dir, false); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "journal"))
	if !bytes.Equal(after, full) {
		t.Fatal("a corrupt journal was modified")
	}
}

// Records larger than Scan's read chunk, at the sizes a user hits first:
// 4 MiB - 1, 4 MiB, 4 MiB + 1 and the largest record, between small ones.
func TestScanRecordsAroundTheChunkSize(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	var want []Entry
	for i, n := range []int{10, scanChunk - 1, scanChunk, 20, scanChunk + 1, MaxRecord - 32, 30} {
		p := bytes.Repeat([]byte{byte(i + 1)}, n)
		want = append(want, Entry{ID: sha256.Sum256(p), Payload: p})
	}
	for _, e := range want { // one append each: Scan must cross every boundary
		if _, err := j.Append([]Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	scanAll := func(j *Journal) {
		t.Helper()
		for from := uint64(1); from <= j.Len(); from++ {
			for _, scan := range []func(from, to uint64, f func(uint64, Entry) error) error{j.Scan, j.Each} {
				scanFrom(t, scan, from, j.Len(), want)
			}
		}
	}
	scanAll(j)
	j.Close()
	if j, err = Open(dir, true); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	scanAll(j)
}

// scanFrom scans from..to with scan (Scan or Each) and checks each entry
// against want while f runs.
func scanFrom(t *testing.T, scan func(from, to uint64, f func(uint64, Entry) error) error, from, to uint64, want []Entry) {
	t.Helper()
	got := 0
	err := scan(from, to, func(seq uint64, e Entry) error {
		w := want[seq-1]
		if e.ID != w.ID || !bytes.Equal(e.Payload, w.Payload) {
			return fmt.Errorf("entry %d differs", seq)
		}
		got++
		return nil
	})
	if err != nil || got != int(to-from+1) {
		t.Fatalf("scan from %d: %d entries, %v", from, got, err)
	}
}

func TestOverLimitAppendWritesNothing(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	appendN(t, j, 0, 3)
	big := make([]byte, MaxRecord-31)
	if _, err := j.Append([]Entry{entry(3), {Payload: big}}); err == nil {
		t.Fatal("a payload over the limit was taken")
	}
	checkAll(t, j, 3)
}

func refEntry(i int) Entry {
	id := sha256.Sum256([]byte(fmt.Sprint("ref ", i)))
	c, _ := cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}.Sum(id[:])
	return Entry{ID: id, Ref: c, Size: 5<<30 + uint64(i), Timestamp: 1_700_000_000 + int64(i)}
}

func TestRefRecords(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, j, 0, 2)
	if _, err := j.Append([]Entry{refEntry(0), entry(2), refEntry(1)}); err != nil {
		t.Fatal(err)
	}
	head := func() string {
		b, err := os.ReadFile(filepath.Join(dir, "journal"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b[:8])
	}
	if h := head(); h != "RLOGJNL2" {
		t.Fatalf("header %q after a ref, want RLOGJNL2", h)
	}
	j.Close()
	if j, err = Open(dir, false); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	want := []Entry{entry(0), entry(1), refEntry(0), entry(2), refEntry(1)}
	check := func(seq uint64, e Entry) error {
		w := want[seq-1]
		if e.ID != w.ID || !bytes.Equal(e.Payload, w.Payload) || !e.Ref.Equals(w.Ref) || e.Size != w.Size || e.Timestamp != w.Timestamp {
			return fmt.Errorf("entry %d: %+v, want %+v", seq, e, w)
		}
		return nil
	}
	if err := j.Scan(1, 5, check); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		e, err := j.Get(seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := check(seq, e); err != nil {
			t.Fatal(err)
		}
	}
}

// A journal without refs keeps the header every build reads.
func TestNoRefKeepsV1Header(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, j, 0, 3)
	j.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "journal"))
	if string(b[:8]) != "RLOGJNL1" {
		t.Fatalf("header %q", b[:8])
	}
}

// FuzzOpen opens any bytes as a journal (with an index of any bytes) and
// reads every entry: errors, never a panic. With no index (it is rebuilt),
// what Open accepts reads back.
func FuzzOpen(f *testing.F) {
	seed := func(es ...Entry) []byte {
		b := append([]byte(nil), magicV2...)
		for _, e := range es {
			b, _ = appendFrame(b, e)
		}
		return b
	}
	f.Add(seed(entry(0), refEntry(1), entry(2)), []byte{})
	f.Add(seed(entry(0))[:20], []byte{8, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("RLOGJNL1"), []byte{1, 2, 3})
	v3 := func(base uint64, es ...Entry) []byte {
		b := binary.LittleEndian.AppendUint64(append([]byte(nil), magicV3...), base)
		for _, e := range es {
			b, _ = appendFrame(b, e)
		}
		return b
	}
	f.Add(v3(41, entry(41), refEntry(42)), []byte{})
	f.Add(v3(1<<63, entry(0)), []byte{16, 0, 0, 0, 0, 0, 0, 0})
	f.Add(v3(7)[:12], []byte{})
	f.Fuzz(func(t *testing.T, jb, ib []byte) {
		for _, readOnly := range []bool{true, false} {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "journal"), jb, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "index"), ib, 0o644); err != nil {
				t.Fatal(err)
			}
			j, err := Open(dir, readOnly)
			if err != nil {
				continue
			}
			if j.Len() > j.Base() {
				err := j.Scan(j.Base()+1, j.Len(), func(uint64, Entry) error { return nil })
				if _, gerr := j.Get(j.Len()); err == nil {
					err = gerr
				}
				if err != nil && len(ib) == 0 {
					t.Fatalf("opened with %d entries, then: %v", j.Len(), err)
				}
			}
			j.Close()
		}
	})
}

// TestCopyFromCompacts keeps entries from..n in a compacted journal that
// numbers them as before, refuses the ones before, appends after them and
// survives a torn tail and a lagging index like any journal.
func TestCopyFromCompacts(t *testing.T) {
	for _, from := range []uint64{1, 2, 37, 60, 61} {
		t.Run(fmt.Sprint(from), func(t *testing.T) {
			dir := t.TempDir()
			j, err := Open(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, j, 0, 60)
			dst := filepath.Join(t.TempDir(), "c")
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := j.CopyFrom(from, dst); err != nil {
				t.Fatal(err)
			}
			j.Close()
			c, err := Open(dst, false)
			if err != nil {
				t.Fatal(err)
			}
			if c.Len() != 60 || c.Base() != from-1 {
				t.Fatalf("len %d base %d, want 60 and %d", c.Len(), c.Base(), from-1)
			}
			if from > 1 {
				if _, err := c.Get(from - 1); !errors.Is(err, ErrCompacted) {
					t.Fatalf("get %d: %v, want ErrCompacted", from-1, err)
				}
				if err := c.Scan(1, 60, func(uint64, Entry) error { return nil }); !errors.Is(err, ErrCompacted) {
					t.Fatalf("scan from 1: %v, want ErrCompacted", err)
				}
			}
			appendN(t, c, 60, 5)
			check := func(c *Journal) {
				t.Helper()
				n := 0
				err := c.Scan(from, c.Len(), func(seq uint64, e Entry) error {
					if want := entry(int(seq) - 1); e.ID != want.ID || !bytes.Equal(e.Payload, want.Payload) {
						return fmt.Errorf("entry %d differs", seq)
					}
					n++
					return nil
				})
				if err != nil || uint64(n) != c.Len()-from+1 {
					t.Fatalf("scan %d..%d: %d entries, %v", from, c.Len(), n, err)
				}
				if e, err := c.Get(c.Len()); err != nil || e.ID != entry(int(c.Len())-1).ID {
					t.Fatalf("get %d: %v", c.Len(), err)
				}
			}
			check(c)
			c.Close()
			// A torn last record and an index that lags: repaired on open.
			st, _ := os.Stat(filepath.Join(dst, "journal"))
			if err := os.Truncate(filepath.Join(dst, "journal"), st.Size()-3); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(filepath.Join(dst, "index"), 8); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{true, false} {
				c, err = Open(dst, ro)
				if err != nil {
					t.Fatal(err)
				}
				if c.Len() != 64 {
					t.Fatalf("read-only %v: len %d after a torn tail, want 64", ro, c.Len())
				}
				check(c)
				c.Close()
			}
		})
	}
}

// An append acknowledged by a new journal survives a power cut that keeps
// only what was synced: the journal's directory entry included.
func TestPowerCutNewJournal(t *testing.T) {
	fsys := crashfs.New()
	if err := fsys.MkdirAll("/repo/log", 0o755); err != nil {
		t.Fatal(err)
	}
	fsys.SyncAll()
	j, err := OpenIn(fsys, "/repo/log", false)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, j, 1, 3)
	fsys = fsys.Reboot(nil)
	j, err = OpenIn(fsys, "/repo/log", false)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if j.Len() != 3 {
		t.Fatalf("after a power cut the journal has %d entries, 3 were acknowledged", j.Len())
	}
}
