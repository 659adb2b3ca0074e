package remotelog_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/internal/netproxy"
	"rlog/pager"
	"rlog/remotelog"
)

// TestRoundsAsTheNetworkSeesThem: a reader catches up from scratch a log
// larger than its memory budget through `rlog serve` behind a proxy that
// adds a round trip and counts. The proxy's sequential rounds are the
// resolve plus Stats.Rounds, its requests the resolve plus the pages and
// index nodes the reader says it fetched. A v2 log's index names every
// page at once, so no page is fetched twice whatever the budget; a v1
// log's pages are found newest first, and those that memory forced out
// are fetched again in parallel waves.
//
// The proxy tells waves apart by their overlap in time, so its added round
// trip must exceed the time a reader takes to send one wave's requests. At
// 50 ms a race-enabled reader on a 2-core machine under two CPU burners
// once took longer; 250 ms leaves room for that.
func TestRoundsAsTheNetworkSeesThem(t *testing.T) {
	const total = 24_000 // of 256 B: about 7 MB of pages, 94 pages
	for _, format := range []uint64{pager.V3, pager.Version, pager.V1} {
		hs, name := servedFormatLog(t, format, total)
		px, err := netproxy.Start(hs.URL, netproxy.Options{RTT: 250 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer px.Close()
		src, err := remotelog.OpenSource(context.Background(), px.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		for _, budget := range []int{0, 2 << 20} {
			px.Reset()
			var n uint64
			_, st, err := remotelog.CatchUp(context.Background(), src, name, remotelog.Cursor{}, remotelog.ReadOptions{MemoryBudget: budget}, func(m remotelog.Message) error {
				if n++; m.Seq != n {
					t.Fatalf("message %d delivered as %d", m.Seq, n)
				}
				return nil
			})
			if err != nil || st.Messages != total {
				t.Fatalf("v%d, budget %d: %d messages, %v", format, budget, st.Messages, err)
			}
			c := px.Counts()
			pages := (total + 255) / 256
			t.Logf("v%d, budget %d: %d pages in the log; reader: %d rounds, %d page and %d index fetches, %d bytes; proxy: %d rounds, %d requests, %d bytes",
				format, budget, pages, st.Rounds, st.Pages, st.IndexNodes, st.BytesFetched, c.Rounds, c.Requests, c.Bytes)
			if c.Rounds != st.Rounds+1 {
				t.Errorf("v%d, budget %d: the proxy saw %d rounds, the reader says %d after the resolve", format, budget, c.Rounds, st.Rounds)
			}
			if c.Requests != st.Pages+st.IndexNodes+st.WindowNodes+1 {
				t.Errorf("v%d, budget %d: the proxy saw %d requests, the reader says %d pages, %d index nodes and %d window nodes after the resolve", format, budget, c.Requests, st.Pages, st.IndexNodes, st.WindowNodes)
			}
			if format != pager.V1 || budget == 0 {
				// v2 and v3 pages: the sealed pages and the head's tail pieces.
				if rep := px.Repeated(); len(rep) > 0 || st.Pages < pages {
					t.Errorf("v%d, budget %d: %d page fetches for %d pages; fetched more than once: %v", format, budget, st.Pages, pages, rep)
				}
				continue
			}
			again := st.Pages - pages
			if again <= 0 {
				t.Errorf("v1, budget %d: no page fetched again for a log of %d bytes", budget, st.BytesFetched)
			}
			if st.Rounds*4 > again {
				t.Errorf("v1, budget %d: %d rounds for %d pages fetched again: not in parallel", budget, st.Rounds, again)
			}
		}
	}
}

// servedFormatLog publishes total messages of 256 B in pages of 256 entries in
// the given format, served by `rlog serve`'s gateway on loopback.
func servedFormatLog(t testing.TB, format uint64, total int) (*httptest.Server, ipns.Name) {
	t.Helper()
	repo := openNewRepoWith(t, "repo", func(cfg *remotelog.Config) { cfg.Policy.Format = format })
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	ctx := context.Background()
	bodies := make([][]byte, total)
	for i := range bodies {
		bodies[i] = make([]byte, 256)
	}
	if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
		t.Fatal(err)
	}
	srv := remotelog.NewServer(repo, w, nil)
	if _, err := srv.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := srv.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs, w.Name()
}
