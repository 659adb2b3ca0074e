package journal

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
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
