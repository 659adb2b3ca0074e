package crashfs

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"testing"

	"rlog/internal/vfs"
)

func write(t *testing.T, fsys vfs.FS, name string, data []byte, sync bool) vfs.File {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func content(t *testing.T, fsys vfs.FS, name string) ([]byte, bool) {
	t.Helper()
	b, err := vfs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// A new file's entry is durable only once its directory is synced; its
// bytes only once it is.
func TestEntryDurableAfterDirSync(t *testing.T) {
	f := New()
	if err := f.Mkdir("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, f, "/d/a", []byte("a"), true)
	if _, ok := content(t, f.Reboot(nil), "/d/a"); ok {
		t.Fatal("a file in a directory never synced survived")
	}
	if _, err := f.Stat("/d"); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("stat after a reboot: %v, want the cut (the old file system is dead)", err)
	}
	f = New()
	f.Mkdir("/d", 0o755)
	write(t, f, "/d/a", []byte("a"), true)
	write(t, f, "/d/b", []byte("b"), false)
	for _, d := range []string{"/", "/d"} {
		if err := f.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	r := f.Reboot(nil)
	if b, ok := content(t, r, "/d/a"); !ok || string(b) != "a" {
		t.Fatalf("synced file and entries: got %q %v", b, ok)
	}
	if b, ok := content(t, r, "/d/b"); !ok || len(b) != 0 {
		t.Fatalf("entry synced, bytes not: got %q %v, want an empty file", b, ok)
	}
}

// A rename is durable once its directory is synced: before, the old name.
func TestRenameDurableAfterDirSync(t *testing.T) {
	f := New()
	write(t, f, "/x", []byte("old"), true)
	f.SyncDir("/")
	write(t, f, "/x.tmp", []byte("new"), true)
	if err := f.Rename("/x.tmp", "/x"); err != nil {
		t.Fatal(err)
	}
	if b, _ := content(t, f, "/x"); string(b) != "new" {
		t.Fatalf("live: %q", b)
	}
	r := f.Reboot(nil)
	if b, _ := content(t, r, "/x"); string(b) != "old" {
		t.Fatalf("after a cut before the directory sync: %q, want old", b)
	}
	if err := r.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	write(t, r, "/x.tmp", []byte("new"), true)
	r.Rename("/x.tmp", "/x")
	r.SyncDir("/")
	if b, _ := content(t, r.Reboot(nil), "/x"); string(b) != "new" {
		t.Fatalf("after the directory sync: %q, want new", b)
	}
}

// The nth operation meets the cut; it and every later one fail, reads
// included.
func TestCutAfter(t *testing.T) {
	f := New()
	h := write(t, f, "/a", []byte("1"), true)
	f.CutAfter(2)
	if _, err := h.Write([]byte("2")); err != nil {
		t.Fatalf("first operation: %v", err)
	}
	if _, err := h.Write([]byte("3")); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("second operation: %v, want the cut", err)
	}
	if _, err := h.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("read after the cut: %v", err)
	}
	if _, err := f.Stat("/a"); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("stat after the cut: %v", err)
	}
}

// With a random source, a file keeps its synced bytes and a prefix of its
// writes since, the last possibly torn; every outcome happens.
func TestTornPrefix(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	full := []byte("synced|aaaa|bbbb|cccc|")
	seen := map[int]bool{}
	for range 400 {
		f := New()
		h := write(t, f, "/j", full[:7], true)
		f.SyncDir("/")
		for i := 7; i < len(full); i += 5 {
			if _, err := h.WriteAt(full[i:i+5], int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		b, ok := content(t, f.Reboot(rng), "/j")
		if !ok || len(b) < 7 || !bytes.HasPrefix(full, b) {
			t.Fatalf("got %q: not the synced bytes and a prefix of the writes", b)
		}
		seen[len(b)] = true
	}
	for _, n := range []int{7, 9, 12, len(full)} {
		if !seen[n] {
			t.Errorf("no reboot kept %d bytes (kept: %v)", n, seen)
		}
	}
}

// A directory renamed over another moves its files; unsynced removals
// come back.
func TestDirRenameAndRemove(t *testing.T) {
	f := New()
	f.MkdirAll("/r/new", 0o755)
	write(t, f, "/r/new/j", []byte("n"), true)
	f.SyncDir("/r/new")
	f.MkdirAll("/r/live", 0o755)
	write(t, f, "/r/live/j", []byte("l"), true)
	f.SyncDir("/r/live")
	f.SyncDir("/r")
	f.SyncDir("/")
	if err := f.Rename("/r/live", "/r/old"); err != nil {
		t.Fatal(err)
	}
	if err := f.Rename("/r/new", "/r/live"); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveAll("/r/old"); err != nil {
		t.Fatal(err)
	}
	if b, _ := content(t, f, "/r/live/j"); string(b) != "n" {
		t.Fatalf("live: %q", b)
	}
	r := f.Reboot(nil)
	if b, _ := content(t, r, "/r/live/j"); string(b) != "l" {
		t.Fatalf("renames not synced: %q, want the old live", b)
	}
	if b, _ := content(t, r, "/r/new/j"); string(b) != "n" {
		t.Fatalf("renames not synced: new/j %q", b)
	}
}
