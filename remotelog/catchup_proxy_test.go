package remotelog_test

import (
	"context"
	"testing"
	"time"

	"rlog/internal/netproxy"
	"rlog/remotelog"
)

// TestRoundsAsTheNetworkSeesThem: a reader catches up from scratch a log
// larger than a memory budget through `rlog serve` behind a proxy that
// adds a round trip and counts. The proxy's sequential rounds are the
// resolve plus Stats.Rounds, its requests the resolve plus Stats.Pages;
// with room for the whole log no page is fetched twice, and with a budget
// smaller than the log the pages fetched again go in parallel waves.
//
// The proxy tells waves apart by their overlap in time, so its added round
// trip (50 ms) must exceed the time a reader takes to send one wave's
// requests; it does by far on a loaded machine.
func TestRoundsAsTheNetworkSeesThem(t *testing.T) {
	const total = 24_000 // of 256 B: about 7 MB of pages, 94 pages
	repo, w, srv, hs := servedRepoWith(t, 256)
	ctx := context.Background()
	bodies := make([][]byte, 8000)
	for i := range bodies {
		bodies[i] = make([]byte, 256)
	}
	for range total / len(bodies) {
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	px, err := netproxy.Start(hs.URL, netproxy.Options{RTT: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	src, err := remotelog.OpenSource(ctx, px.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, budget := range []int{0, 2 << 20} {
		px.Reset()
		var n uint64
		_, st, err := remotelog.CatchUp(ctx, src, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{MemoryBudget: budget}, func(m remotelog.Message) error {
			if n++; m.Seq != n {
				t.Fatalf("message %d delivered as %d", m.Seq, n)
			}
			return nil
		})
		if err != nil || st.Messages != total {
			t.Fatalf("budget %d: %d messages, %v", budget, st.Messages, err)
		}
		c := px.Counts()
		t.Logf("budget %d: %d pages in the log; reader: %d rounds, %d page fetches, %d bytes; proxy: %d rounds, %d requests, %d bytes",
			budget, st.LogLength/256+1, st.Rounds, st.Pages, st.BytesFetched, c.Rounds, c.Requests, c.Bytes)
		if c.Rounds != st.Rounds+1 {
			t.Errorf("budget %d: the proxy saw %d rounds, the reader says %d after the resolve", budget, c.Rounds, st.Rounds)
		}
		if c.Requests != st.Pages+1 {
			t.Errorf("budget %d: the proxy saw %d requests, the reader says %d pages after the resolve", budget, c.Requests, st.Pages)
		}
		pages := int((total + 255) / 256)
		if budget == 0 {
			if rep := px.Repeated(); len(rep) > 0 || st.Pages != pages {
				t.Errorf("default budget: %d page fetches for %d pages; fetched more than once: %v", st.Pages, pages, rep)
			}
			continue
		}
		// Pages fetched again go in waves of about half the budget.
		again := st.Pages - pages
		if again <= 0 {
			t.Errorf("budget %d: no page fetched again for a log of %d bytes", budget, st.BytesFetched)
		}
		if st.Rounds*4 > again {
			t.Errorf("budget %d: %d rounds for %d pages fetched again: not in parallel", budget, st.Rounds, again)
		}
	}
}
