package remotelog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/namesys"
	"rlog/remotelog"
)

// device is a repo on one device: its own folder, store and record files.
type device struct {
	t    *testing.T
	dir  string
	repo *remotelog.Repo
	w    *remotelog.Writer
	now  func() time.Time
}

func openDevice(t *testing.T, dir string, now func() time.Time) *device {
	t.Helper()
	d := &device{t: t, dir: dir, now: now}
	var err error
	if d.repo, err = remotelog.Open(dir); err != nil {
		t.Fatal(err)
	}
	if d.w, err = d.repo.Writer(nil, now); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

func (d *device) close() {
	if d.w != nil {
		d.w.Close()
		d.repo.Close()
		d.w, d.repo = nil, nil
	}
}

func (d *device) appendPublish(bodies ...string) remotelog.PublishResult {
	d.t.Helper()
	var bs [][]byte
	for _, b := range bodies {
		bs = append(bs, []byte(b))
	}
	ctx := context.Background()
	if _, err := d.w.Append(ctx, group, bs); err != nil {
		d.t.Fatal(err)
	}
	res, err := d.w.Publish(ctx, remotelog.PublishOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	return res
}

// twoDevices is the user's story: a repo copied to a second device, then
// each device appends its own message and publishes record sequence 2.
func twoDevices(t *testing.T) (a, b *device, ha, hb cid.Cid) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	cfg, err := remotelog.DefaultConfig("paged")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Lifetime = remotelog.Duration(testLifetime)
	if _, err := remotelog.Init(dirA, cfg); err != nil {
		t.Fatal(err)
	}
	a = openDevice(t, dirA, clk.Now)
	a.appendPublish("hello")
	a.close()
	if err := os.CopyFS(dirB, os.DirFS(dirA)); err != nil {
		t.Fatal(err)
	}
	a, b = openDevice(t, dirA, clk.Now), openDevice(t, dirB, clk.Now)
	ra, rb := a.appendPublish("from a"), b.appendPublish("from b")
	if ra.RecordSeq != 2 || rb.RecordSeq != 2 || ra.Head.Equals(rb.Head) {
		t.Fatalf("want two records with sequence 2 and different heads: %d %s, %d %s", ra.RecordSeq, ra.Head, rb.RecordSeq, rb.Head)
	}
	return a, b, ra.Head, rb.Head
}

// wantFork checks err is a fork naming both heads.
func wantFork(t *testing.T, what string, err error, ha, hb cid.Cid) {
	t.Helper()
	if !errors.Is(err, remotelog.ErrFork) {
		t.Fatalf("%s: got %v, want ErrFork", what, err)
	}
	if msg := err.Error(); !strings.Contains(msg, ha.String()) || !strings.Contains(msg, hb.String()) || !strings.Contains(msg, "rlog recover") {
		t.Fatalf("%s: the error must name both heads and the way out: %v", what, err)
	}
}

// TestRecordForkReader: a reader that read one device's record sequence 2
// and is then shown the other's reports a fork, delivers nothing of it,
// and keeps its cursor.
func TestRecordForkReader(t *testing.T) {
	a, b, ha, hb := twoDevices(t)
	ctx := context.Background()
	var got []string
	cur, _, err := remotelog.CatchUp(ctx, a.repo, a.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: a.now}, func(m remotelog.Message) error {
		got = append(got, string(m.Body))
		return nil
	})
	if err != nil || len(got) != 2 || cur.RecordSeq != 2 || cur.Head != ha.String() {
		t.Fatalf("read device a: %v %q %+v", err, got, cur)
	}
	next, _, err := remotelog.CatchUp(ctx, b.repo, b.w.Name(), cur, remotelog.ReadOptions{Now: b.now}, func(m remotelog.Message) error {
		t.Errorf("delivered %q from the other log", m.Body)
		return nil
	})
	wantFork(t, "reader", err, ha, hb)
	if next != cur {
		t.Fatalf("the cursor moved: %+v, was %+v", next, cur)
	}
	// A follower stops at once, its cursor unchanged.
	saved := cur
	next, err = remotelog.Follow(ctx, b.repo, b.w.Name(), cur, remotelog.FollowOptions{
		Read:  remotelog.ReadOptions{Now: b.now},
		After: func(time.Duration) <-chan time.Time { return nil },
		Save:  func(c remotelog.Cursor) error { saved = c; return nil },
	}, func(m remotelog.Message) error {
		t.Errorf("follower delivered %q from the other log", m.Body)
		return nil
	})
	wantFork(t, "follower", err, ha, hb)
	if next != cur || saved != cur {
		t.Fatalf("the follower's cursor moved: %+v, saved %+v, was %+v", next, saved, cur)
	}
	// A cursor file of an older rlog (no head) still reads, and still gets
	// the message check.
	repoDir := t.TempDir()
	store := remotelog.Cursors(repoDir)
	if err := store.Save(a.w.Name(), cur); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(repoDir, "cursors", a.w.Name().String()+".json")
	var fields map[string]any
	raw, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(raw, &fields) != nil {
		t.Fatalf("read cursor file: %v %s", err, raw)
	}
	delete(fields, "head")
	raw, _ = json.Marshal(fields)
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	old, err := store.Get(a.w.Name())
	if err != nil || old.Head != "" || old.Seq != cur.Seq || old.RecordSeq != cur.RecordSeq {
		t.Fatalf("old cursor file: %+v %v", old, err)
	}
	if _, _, err := remotelog.CatchUp(ctx, b.repo, b.w.Name(), old, remotelog.ReadOptions{Now: b.now}, func(remotelog.Message) error { return nil }); !errors.Is(err, remotelog.ErrFork) {
		t.Fatalf("cursor without head: got %v, want ErrFork", err)
	}
	// The same record again is no fork.
	if _, _, err := remotelog.CatchUp(ctx, a.repo, a.w.Name(), cur, remotelog.ReadOptions{Now: a.now}, func(remotelog.Message) error { return nil }); err != nil {
		t.Fatalf("the same record again: %v", err)
	}
}

// TestRecordForkRestoreAndRecover: restoring one device's backup into the
// other reports the fork and keeps the local record; publish refuses until
// recover merges both logs; the next record supersedes both and a reader
// of either side continues.
func TestRecordForkRestoreAndRecover(t *testing.T) {
	a, b, ha, hb := twoDevices(t)
	ctx := context.Background()
	var car bytes.Buffer
	if _, err := remotelog.Backup(ctx, b.repo, b.w.Name(), &car, b.now, nil); err != nil {
		t.Fatal(err)
	}
	reader, _, err := remotelog.CatchUp(ctx, a.repo, a.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: a.now}, func(remotelog.Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}

	_, err = remotelog.Restore(ctx, bytes.NewReader(car.Bytes()), a.repo.Store(), a.repo.Names(), a.now)
	wantFork(t, "restore", err, ha, hb)
	rec, err := namesys.Resolve(ctx, a.repo.Names(), a.w.Name(), a.now())
	if err != nil || rec.Sequence != 2 || !rec.Value.Equals(ha) {
		t.Fatalf("restore replaced the local record: %+v %v", rec, err)
	}
	// Restoring it again says the same.
	_, err = remotelog.Restore(ctx, bytes.NewReader(car.Bytes()), a.repo.Store(), a.repo.Names(), a.now)
	wantFork(t, "restore again", err, ha, hb)

	_, err = a.w.Publish(ctx, remotelog.PublishOptions{})
	wantFork(t, "publish after the restore", err, ha, hb)

	res, err := a.w.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 2 || res.Merged != 1 || !res.Fork.Equals(hb) || res.Kept != 0 {
		t.Fatalf("recover: %+v", res)
	}
	pub, err := a.w.Publish(ctx, remotelog.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pub.RecordSeq != 3 || pub.Messages != 3 {
		t.Fatalf("publish after recover: %+v", pub)
	}
	if _, err := a.repo.Names().ResolveFork(ctx, a.w.Name()); !errors.Is(err, namesys.ErrNotFound) {
		t.Fatalf("the newer record should supersede the fork: %v", err)
	}
	var got []string
	if _, _, err := remotelog.CatchUp(ctx, a.repo, a.w.Name(), reader, remotelog.ReadOptions{Now: a.now}, func(m remotelog.Message) error {
		got = append(got, string(m.Body))
		return nil
	}); err != nil || len(got) != 1 || got[0] != "from b" {
		t.Fatalf("the reader of device a continues: %v %q", err, got)
	}
}

// TestRecordForkPublish: a device whose name store now holds the other
// device's record with its own last sequence refuses to publish, and
// recover rebuilds on it keeping the local message.
func TestRecordForkPublish(t *testing.T) {
	a, b, ha, hb := twoDevices(t)
	ctx := context.Background()
	// Both publish to one name store (a Kubo node, the DHT): b's record
	// replaced a's there. Here: b's record file and blocks copied over.
	raw, err := b.repo.Names().Resolve(ctx, b.w.Name())
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if _, err := remotelog.Backup(ctx, b.repo, b.w.Name(), &car, b.now, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cas.ImportCAR(ctx, a.repo.Store(), &car); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "ipns", a.w.Name().String()+".ipns"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := a.w.Append(ctx, group, [][]byte{[]byte("more from a")}); err != nil {
		t.Fatal(err)
	}
	_, err = a.w.Publish(ctx, remotelog.PublishOptions{})
	wantFork(t, "publish", err, ha, hb)
	res, err := a.w.Recover(ctx)
	if err != nil || res.Published != 2 || res.Kept != 2 || res.Fork.Defined() {
		t.Fatalf("recover: %+v %v", res, err)
	}
	if pub, err := a.w.Publish(ctx, remotelog.PublishOptions{}); err != nil || pub.RecordSeq != 3 || pub.Messages != 4 {
		t.Fatalf("publish after recover: %+v %v", pub, err)
	}
}

// TestRecordForkKeep: a keeper holding one device's record stops with a
// fork when shown the other's, and never stores it.
func TestRecordForkKeep(t *testing.T) {
	a, b, ha, hb := twoDevices(t)
	target := remotelog.KeepTarget{Store: cas.NewMemory(), Names: namesys.NewDir(t.TempDir(), false)}
	never := func(time.Duration) <-chan time.Time { return nil }
	keep := func(src remotelog.Source, cur remotelog.Cursor) (remotelog.Cursor, error) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		held, _ := namesys.Resolve(ctx, target.Names.(*namesys.Dir), a.w.Name(), a.now())
		return remotelog.Keep(ctx, src, a.w.Name(), cur, target, remotelog.KeepOptions{
			Follow: remotelog.FollowOptions{Read: remotelog.ReadOptions{Now: a.now}, After: never},
			// Stop once a record is taken; the one held at the start is
			// announced first.
			Kept: func(rec *namesys.Record) {
				if held == nil || !rec.Value.Equals(held.Value) {
					cancel()
				}
			},
		})
	}
	cur, err := keep(a.repo, remotelog.Cursor{})
	if !errors.Is(err, context.Canceled) || cur.Head != ha.String() {
		t.Fatalf("keep device a: %v %+v", err, cur)
	}
	_, err = keep(b.repo, cur)
	wantFork(t, "keep with its cursor", err, ha, hb)
	// Without its cursor, the record it holds refuses the other.
	_, err = keep(b.repo, remotelog.Cursor{})
	if !errors.Is(err, remotelog.ErrFork) {
		t.Fatalf("keep without a cursor: got %v, want ErrFork", err)
	}
	rec, err := namesys.Resolve(context.Background(), target.Names.(*namesys.Dir), a.w.Name(), a.now())
	if err != nil || !rec.Value.Equals(ha) {
		t.Fatalf("the kept record changed: %+v %v", rec, err)
	}
}

// TestCursorPastEnd: a cursor chosen by hand (no id) beyond the log's last
// message is ErrPastEnd, saying how long the log is; a saved cursor (with
// the id of the message it read) beyond it is still a fork: the log lost
// messages its reader read.
func TestCursorPastEnd(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 3, 0)
	w.publish(t)
	_, _, st, err := read(t, w, w, remotelog.Cursor{Seq: 99999})
	if !errors.Is(err, remotelog.ErrPastEnd) || errors.Is(err, remotelog.ErrFork) || !strings.Contains(err.Error(), "the log has 3 messages") {
		t.Errorf("cursor by hand past the end: %v, want ErrPastEnd saying the log has 3 messages", err)
	}
	if st.LogLength != 3 {
		t.Errorf("log length %d, want 3", st.LogLength)
	}
	id, _ := msg(1)
	if _, _, _, err := read(t, w, w, remotelog.Cursor{Seq: 99999, ID: id}); !errors.Is(err, remotelog.ErrFork) {
		t.Errorf("saved cursor past the end: %v, want ErrFork", err)
	}
	if got, _, _, err := read(t, w, w, remotelog.Cursor{Seq: 3}); err != nil || len(got) != 0 {
		t.Errorf("cursor by hand at the end: %d messages, %v", len(got), err)
	}
}
