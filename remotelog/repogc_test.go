package remotelog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/remotelog"
)

// TestRepoGC fills a repo with its own log (published often: replaced
// heads, tail pieces and index nodes are garbage), a kept log and blocks
// nothing references; repo stat tells them apart, repo gc removes the
// garbage only, and both logs still read back whole and check clean.
func TestRepoGC(t *testing.T) {
	ctx := context.Background()
	grow := func(repo *remotelog.Repo, w *remotelog.Writer, publishes int) { growLog(t, repo, w, publishes, 7) }
	a, wa := newWriterRepo(t)
	b, wb := newWriterRepo(t)
	grow(a, wa, 20)
	grow(b, wb, 5)
	// a keeps b's log.
	if _, _, err := remotelog.CatchUpKeeping(ctx, b, wb.Name(), remotelog.Cursor{}, remotelog.KeepTarget{Store: a.Store(), Names: a.Names()}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var junk []blocks.Block
	for i := range 30 {
		_, blks, _ := cas.PayloadBlocks([]byte(fmt.Sprintf("nothing references block %d", i)))
		junk = append(junk, blks...)
	}
	if err := a.Store().Put(ctx, junk); err != nil {
		t.Fatal(err)
	}
	before, err := a.Stat(ctx, wa)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before: %+v", before)
	if before.Logs != 1 || before.OwnLog.Blocks == 0 || before.OtherLogs.Blocks == 0 || before.Garbage.Blocks < 30 || before.Missing != 0 {
		t.Fatalf("stat before gc: %+v", before)
	}
	res, err := a.GC(ctx, wa)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != before.Garbage {
		t.Fatalf("gc removed %+v, stat said garbage %+v", res.Removed, before.Garbage)
	}
	after, err := a.Stat(ctx, wa)
	if err != nil {
		t.Fatal(err)
	}
	if after.Garbage.Blocks != 0 || after.OwnLog != before.OwnLog || after.OtherLogs != before.OtherLogs {
		t.Fatalf("stat after gc: %+v (before %+v)", after, before)
	}
	for _, c := range junk {
		if ok, _ := a.Store().Has(ctx, c.Cid()); ok {
			t.Fatalf("garbage block %s survived", c.Cid())
		}
	}
	localLog(t, wa)
	for _, w := range []*remotelog.Writer{wa, wb} {
		if rep := remotelog.Check(ctx, a, w.Name(), cid.Undef, time.Now); !rep.OK() {
			t.Fatalf("check %s after gc: %v", w.Name(), rep.Findings)
		}
	}
	// The log goes on: append, publish, collect again.
	grow(a, wa, 3)
	if _, err := a.GC(ctx, wa); err != nil {
		t.Fatal(err)
	}
	localLog(t, wa)
	if rep := remotelog.Check(ctx, a, wa.Name(), cid.Undef, time.Now); !rep.OK() {
		t.Fatalf("check after the second gc: %v", rep.Findings)
	}
}

// TestRepoGCBesideKeep collects a repo over and over while a keeper stores
// another log in it, publish after publish: every record the keeper stored
// points at a log that is whole in the repo.
func TestRepoGCBesideKeep(t *testing.T) {
	ctx := context.Background()
	a, wa := newWriterRepo(t)
	b, wb := newWriterRepo(t)
	grow := func(r *remotelog.Repo, w *remotelog.Writer) { growLog(t, r, w, 1, 9) }
	grow(a, wa)
	done := make(chan struct{})
	collected := make(chan error, 1)
	go func() {
		defer close(collected)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := a.GC(ctx, wa); err != nil {
				collected <- err
				return
			}
		}
	}()
	target := remotelog.KeepTarget{Store: a.Store(), Names: a.Names()}
	var cur remotelog.Cursor
	for range 15 {
		grow(b, wb)
		var err error
		if cur, _, err = remotelog.CatchUpKeeping(ctx, b, wb.Name(), cur, target, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-collected; err != nil {
		t.Fatal(err)
	}
	if _, err := a.GC(ctx, wa); err != nil {
		t.Fatal(err)
	}
	rep := remotelog.Check(ctx, a, wb.Name(), cid.Undef, time.Now)
	if !rep.OK() || rep.Messages != wb.Len() {
		t.Fatalf("the kept log after collections beside the keeper: %d of %d messages, %v", rep.Messages, wb.Len(), rep.Findings)
	}
}

// growLog appends n messages (crashBody) and publishes, publishes times.
func growLog(t *testing.T, repo *remotelog.Repo, w *remotelog.Writer, publishes, n int) {
	t.Helper()
	ctx := context.Background()
	for range publishes {
		var bodies [][]byte
		for seq := w.Len() + 1; seq <= w.Len()+uint64(n); seq++ {
			bodies = append(bodies, crashBody(seq))
		}
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
