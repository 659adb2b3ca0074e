package remotelog_test

import (
	"os"
	"path/filepath"
	"testing"

	"rlog/mvds"
	"rlog/remotelog"
)

// A cursor read while a progress file records messages past it is moved
// on to the last one recorded; a record torn by a power loss is ignored;
// saving a cursor empties the file, and an open Progress goes on
// recording in it.
func TestProgressMovesTheCursorOn(t *testing.T) {
	dir := t.TempDir()
	cs := remotelog.Cursors(dir)
	name := newHostileLog(t, 7).name
	base := remotelog.Cursor{Seq: 10, ID: mvds.MessageID{10}, RecordSeq: 3, Head: "bafyhead"}
	if err := cs.Save(name, base); err != nil {
		t.Fatal(err)
	}
	p, err := cs.Progress(name, base)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for seq := uint64(11); seq <= 13; seq++ {
		if err := p.Delivered(seq, mvds.MessageID{byte(seq)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cs.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	want := remotelog.Cursor{Seq: 13, ID: mvds.MessageID{13}, RecordSeq: 3, Head: "bafyhead"}
	if got != want {
		t.Fatalf("cursor %+v, want %+v", got, want)
	}
	// A torn last record: the one before it counts.
	path := filepath.Join(dir, "cursors", name.String()+".progress")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 0, 0, 0, 0, 0, 99, 1, 2, 3})
	f.Close()
	if got, _ := cs.Get(name); got.Seq != 13 {
		t.Fatalf("after a torn record: cursor at %d, want 13", got.Seq)
	}
	os.Truncate(path, 0)
	p.Delivered(14, mvds.MessageID{14})
	want = remotelog.Cursor{Seq: 14, ID: mvds.MessageID{14}, RecordSeq: 3, Head: "bafyhead"}
	if err := cs.Save(name, want); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatalf("progress file of %d bytes after save", st.Size())
	}
	p.Delivered(15, mvds.MessageID{15})
	if got, _ := cs.Get(name); got.Seq != 15 {
		t.Fatalf("recorded after a save: cursor at %d, want 15", got.Seq)
	}
	// Records before the cursor (a fetch --all) do not move it back.
	if err := cs.Save(name, remotelog.Cursor{Seq: 20}); err != nil {
		t.Fatal(err)
	}
	p.Delivered(5, mvds.MessageID{5})
	if got, _ := cs.Get(name); got.Seq != 20 {
		t.Fatalf("cursor at %d, want 20", got.Seq)
	}
}

// FuzzProgress: whatever a progress file holds, reading the cursor does
// not panic, and it never moves the cursor back.
func FuzzProgress(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 48))
	f.Add(make([]byte, 100))
	name := newHostileLog(f, 7).name
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		cs := remotelog.Cursors(dir)
		if err := cs.Save(name, remotelog.Cursor{Seq: 5}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cursors", name.String()+".progress"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := cs.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if c.Seq < 5 {
			t.Fatalf("cursor moved back to %d", c.Seq)
		}
	})
}
