package remotelog_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"rlog/cas"
	"rlog/remotelog"
)

// localLog reads the writer's whole local log and checks it against
// crashBody, message by message.
func localLog(t *testing.T, w *remotelog.Writer) {
	t.Helper()
	seq := uint64(0)
	err := w.Scan(1, w.Len(), func(m remotelog.Message) error {
		seq++
		if m.Seq != seq {
			return fmt.Errorf("message %d: got seq %d", seq, m.Seq)
		}
		if m.IsLarge() {
			return fmt.Errorf("message %d: unexpectedly large", seq)
		}
		if !bytes.Equal(m.Body, crashBody(seq)) {
			return fmt.Errorf("message %d: body %.20q", seq, m.Body)
		}
		if m.ID != m.Message.ID() {
			return fmt.Errorf("message %d: id does not match its message", seq)
		}
		return nil
	})
	if err != nil || seq != w.Len() {
		t.Fatalf("local log: read %d of %d: %v", seq, w.Len(), err)
	}
}

func journalSize(t *testing.T, dir string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, "log", "journal"))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// appendCrashBodies appends crashBody(seq) for seq from w.Len()+1 to n.
func appendCrashBodies(t *testing.T, repo *remotelog.Repo, w *remotelog.Writer, n uint64) {
	t.Helper()
	var bodies [][]byte
	for seq := w.Len() + 1; seq <= n; seq++ {
		bodies = append(bodies, crashBody(seq))
	}
	if _, err := w.Append(context.Background(), repo.DefaultGroup(), bodies); err != nil {
		t.Fatal(err)
	}
}

// newWriterRepo is a new repo whose pages seal often, and its writer.
func newWriterRepo(t *testing.T) (*remotelog.Repo, *remotelog.Writer) {
	t.Helper()
	dir := t.TempDir()
	if _, err := remotelog.Init(dir, mustConfig(t)); err != nil {
		t.Fatal(err)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return repo, w
}

// TestStoredOnce publishes a log whose pages seal often into the repo's own
// store: the journal keeps only the open page, and every reader of the
// local log (Scan, the duplicate rule, the fork check, recover) still finds
// every message, read back from the sealed pages.
func TestStoredOnce(t *testing.T) {
	repo, w := newWriterRepo(t)
	dir := repo.Dir
	ctx := context.Background()
	appendUpTo := func(n uint64) { t.Helper(); appendCrashBodies(t, repo, w, n) }
	appendUpTo(300)
	full := journalSize(t, dir)
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := journalSize(t, dir); got*10 > full {
		t.Fatalf("journal of %d bytes after publish, %d before: not compacted", got, full)
	}
	localLog(t, w)
	appendUpTo(333)
	localLog(t, w)
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	localLog(t, w)
	// The same body again within the same second takes the next second:
	// the duplicate rule reads the newest second back from sealed pages.
	appendUpTo(340)
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	localLog(t, w)
	// Recover rebuilds the journal whole from the published log.
	res, err := w.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 340 || res.Kept != 0 {
		t.Fatalf("recover: %+v, want 340 published and none kept", res)
	}
	localLog(t, w)
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	localLog(t, w)
	if rep := remotelog.Check(ctx, repo, w.Name(), cid.Undef, time.Now); !rep.OK() {
		t.Fatalf("check after compaction: %+v", rep.Findings)
	}
}

// TestPagesInTablesStillRead: a repo whose sealed pages are in the
// store's LevelDB tables (written before pack files) reads them there,
// puts the pages it seals from then on in packs, and checks clean.
func TestPagesInTablesStillRead(t *testing.T) {
	repo, w := newWriterRepo(t)
	ctx := context.Background()
	appendTo := func(n uint64) {
		t.Helper()
		appendCrashBodies(t, repo, w, n)
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(300)
	packs := filepath.Join(repo.Dir, "blocks", "packs")
	if ents, _ := os.ReadDir(packs); len(ents) == 0 {
		t.Fatal("no pack after sealing pages")
	}
	// Every block moved to the tables, as a repo written before packs.
	e := repo.Store().(*cas.Embedded)
	var all []cid.Cid
	if err := e.Walk(ctx, func(mh multihash.Multihash, _ int) error {
		all = append(all, cid.NewCidV1(cid.Raw, mh))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		b, err := e.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Delete(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := e.Put(ctx, []blocks.Block{cas.NewBlock(c, b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Collect(ctx, func(context.Context) (func(multihash.Multihash) bool, error) {
		return func(multihash.Multihash) bool { return true }, nil
	}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(packs); len(ents) != 0 {
		t.Fatalf("%d packs left, every block in the tables", len(ents))
	}
	w.Close()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	localLog(t, w)
	appendTo(700)
	localLog(t, w)
	if ents, _ := os.ReadDir(packs); len(ents) == 0 {
		t.Fatal("pages sealed since are not in packs")
	}
	if rep := remotelog.Check(ctx, repo, w.Name(), cid.Undef, time.Now); !rep.OK() {
		t.Fatalf("check: %+v", rep.Findings)
	}
}
