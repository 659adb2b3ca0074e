package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"rlog/cas"
	"rlog/namesys"
	"rlog/remotelog"
)

func backupOf(t *testing.T, w *world) []byte {
	t.Helper()
	var buf bytes.Buffer
	res, err := remotelog.Backup(context.Background(), w, w.w.Name(), &buf, w.clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != w.w.Len() {
		t.Fatalf("backup holds %d messages, the log %d", res.Messages, w.w.Len())
	}
	return buf.Bytes()
}

func TestBackupRestoreCheck(t *testing.T) {
	w := newWorld(t, small(t))
	big := bytes.Repeat([]byte("payload "), 100<<10) // 800 KiB: a UnixFS file
	w.appendN(t, 0, 57, 0)
	w.w.Append(context.Background(), group, [][]byte{big})
	w.publish(t)
	car := backupOf(t, w)
	ctx := context.Background()

	// The file checks clean, and reads as a source.
	path := filepath.Join(t.TempDir(), "log.car")
	os.WriteFile(path, car, 0o644)
	src, err := remotelog.OpenCARSource(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cs := src.(*remotelog.CARSource)
	rep := remotelog.Check(ctx, cs, cs.Name(), cs.Head, w.clock.Now)
	if !rep.OK() || rep.Messages != 58 {
		t.Fatalf("check of a good backup: %+v", rep)
	}
	got, _, err := readAll(t, cs, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil || len(got) != 58 || !bytes.Equal(got[57].Body, big) {
		t.Fatalf("read the backup: %d messages, %v", len(got), err)
	}
	src.Close()

	// Restore into an empty repo: every block verified, the log readable.
	store, names := cas.NewMemory(), namesys.NewMemory()
	res, err := remotelog.Restore(ctx, bytes.NewReader(car), store, names, w.clock.Now)
	if err != nil || !res.RecordSaved || res.Messages != 58 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	got, _, err = readAll(t, struct {
		cas.Getter
		namesys.Resolver
	}{store, names}, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil || len(got) != 58 {
		t.Fatalf("read the restored log: %d, %v", len(got), err)
	}

	// A damaged backup: check names the problem, restore refuses it.
	bad := bytes.Replace(append([]byte(nil), car...), []byte("message 000042"), []byte("massage 000042"), 1)
	os.WriteFile(path, bad, 0o644)
	src, err = remotelog.OpenCARSource(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cs = src.(*remotelog.CARSource)
	rep = remotelog.Check(ctx, cs, cs.Name(), cs.Head, w.clock.Now)
	if rep.OK() || rep.Findings[0].Kind != "hash-mismatch" {
		t.Fatalf("check of a damaged backup: %+v", rep.Findings)
	}
	src.Close()
	empty := cas.NewMemory()
	if _, err := remotelog.Restore(ctx, bytes.NewReader(bad), empty, namesys.NewMemory(), w.clock.Now); err == nil {
		t.Fatal("restore of a damaged backup succeeded")
	}
}

// TestRestoreOldBackupIntoWriterNeverForks: the writer's own repo gets an
// old backup back; its newer record stays, publishing goes on, and a
// reader sees no fork.
func TestRestoreOldBackupIntoWriterNeverForks(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 20, 0)
	w.publish(t)
	old := backupOf(t, w)
	_, cur, err := readAll(t, w, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.appendN(t, 20, 15, 0)
	w.publish(t)
	res, err := remotelog.Restore(context.Background(), bytes.NewReader(old), w.store, w.names, w.clock.Now)
	if err != nil || res.RecordSaved {
		t.Fatalf("restore of an old backup: saved=%v %v", res.RecordSaved, err)
	}
	w.appendN(t, 35, 1, 0)
	if _, err := w.w.Publish(context.Background(), remotelog.PublishOptions{}); err != nil {
		t.Fatalf("publish after restoring an old backup: %v", err)
	}
	got, _, err := readAll(t, w, w.w.Name(), cur, remotelog.ReadOptions{Now: w.clock.Now})
	if errors.Is(err, remotelog.ErrFork) || err != nil || len(got) != 16 {
		t.Fatalf("reader after the restore: %d messages, %v", len(got), err)
	}
}
