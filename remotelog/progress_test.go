package remotelog_test

import (
	"encoding/binary"
	"hash/crc32"
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

// The output mark of the last record is read back with it: Start's before
// any message, then each message's; a file of records from before output
// marks (48 bytes each) still moves the cursor, without a mark.
func TestProgressOutputMarks(t *testing.T) {
	dir := t.TempDir()
	cs := remotelog.Cursors(dir)
	name := newHostileLog(t, 7).name
	if _, ok, err := cs.LastProgress(name); ok || err != nil {
		t.Fatalf("no progress file: ok %v, %v", ok, err)
	}
	base := remotelog.Cursor{Seq: 10, ID: mvds.MessageID{10}}
	p, err := cs.Progress(name, base)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Start(remotelog.OutputMark{File: 77, Offset: 1000}); err != nil {
		t.Fatal(err)
	}
	e, ok, err := cs.LastProgress(name)
	if want := (remotelog.ProgressEntry{Seq: 10, ID: mvds.MessageID{10}, Out: remotelog.OutputMark{File: 77, Offset: 1000}}); !ok || err != nil || e != want {
		t.Fatalf("after Start: %+v %v %v, want %+v", e, ok, err, want)
	}
	if err := p.DeliveredTo(11, mvds.MessageID{11}, remotelog.OutputMark{File: 77, Offset: 1090}); err != nil {
		t.Fatal(err)
	}
	e, _, _ = cs.LastProgress(name)
	if e.Seq != 11 || e.Out.Offset != 1090 || e.Out.File != 77 {
		t.Fatalf("after message 11: %+v", e)
	}
	// A record of the form before marks.
	old := make([]byte, 48)
	old[7] = 12
	old[8] = 12
	binary.BigEndian.PutUint32(old[40:44], crc32.Checksum(old[:40], crc32.MakeTable(crc32.Castagnoli)))
	path := filepath.Join(dir, "cursors", name.String()+".progress")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	e, ok, _ = cs.LastProgress(name)
	if !ok || e.Seq != 12 || e.ID != (mvds.MessageID{12}) || e.Out != (remotelog.OutputMark{}) {
		t.Fatalf("a record of 48 bytes read as %+v (ok %v)", e, ok)
	}
}
