package remotelog_test

import (
	"context"
	"testing"

	"github.com/ipfs/go-cid"

	"rlog/remotelog"
)

// TestSupersededHeadOutlivesOnePublish: a reader who resolved the record
// just before a publish still finds the head it was given; the head goes
// at the publish after (a fetch every second beside a publish every few
// seconds met a deleted head).
func TestSupersededHeadOutlivesOnePublish(t *testing.T) {
	ctx := context.Background()
	repo := openNewRepo(t, "w")
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	publish := func(body string) cid.Cid {
		t.Helper()
		if _, err := w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte(body)}); err != nil {
			t.Fatal(err)
		}
		res, err := w.Publish(ctx, remotelog.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Head
	}
	has := func(c cid.Cid) bool {
		ok, err := repo.Store().Has(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	h1 := publish("one") // the open page: superseded by the next publish
	publish("two")
	if !has(h1) {
		t.Fatal("the head a reader may have just resolved is gone after one publish")
	}
	publish("three")
	if has(h1) {
		t.Error("a head superseded two publishes ago is kept")
	}
	// A reader given the head of the previous record reads it whole.
	if _, _, err := remotelog.CatchUp(ctx, repo, repo.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
}
