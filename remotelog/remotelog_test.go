package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"rlog/mvds"
	"rlog/pager"
	"rlog/remotelog"
)

func small(t testing.TB) pager.Policy {
	pol, _ := pager.Preset("paged")
	pol.PageEntries = 10
	pol.Window = 4
	pol.TailEntries, pol.TailRatio, pol.HeadEntries = 8, 0, 0 // pieces on the pages of 9 and 10 entries only
	return pol
}

// TestCatchUpExactlyOnce: a reader that catches up after every round of
// appends and publishes sees every message once, in order, with the right
// content, across pages sealed between rounds.
func TestCatchUpExactlyOnce(t *testing.T) {
	for _, preset := range []string{"paged", "full", "linked"} {
		t.Run(preset, func(t *testing.T) {
			pol, _ := pager.Preset(preset)
			if preset == "paged" {
				pol = small(t)
			}
			w := newWorld(t, pol)
			var cur remotelog.Cursor
			next := 1
			for round, n := range []int{1, 9, 1, 25, 3, 40} {
				w.appendN(t, next-1, n, 0)
				res := w.publish(t)
				if res.Messages != uint64(next+n-1) || res.New != uint64(n) {
					t.Fatalf("round %d: publish reported %+v", round, res)
				}
				got, c, _, err := read(t, w, w, cur)
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				for _, m := range got {
					if m.Seq != uint64(next) || !bytes.Equal(m.Body, body(next-1)) || !bytes.Equal(m.GroupID, group) {
						t.Fatalf("round %d: got seq %d %q, want %d", round, m.Seq, m.Body, next)
					}
					if m.ID != m.Message.ID() {
						t.Fatal("delivered id does not match the message")
					}
					next++
				}
				if len(got) != n {
					t.Fatalf("round %d: got %d messages, want %d", round, len(got), n)
				}
				cur = c
			}
			// Nothing new: nothing delivered, cursor unchanged.
			got, c, _, err := read(t, w, w, cur)
			if err != nil || len(got) != 0 || c.Seq != cur.Seq {
				t.Fatalf("second read: %d messages, %v", len(got), err)
			}
		})
	}
}

// TestRoundsWithinBounds checks the catch-up cost the design promises: one
// resolve, then at most 2 rounds of page fetches inside the head's window,
// at most 2+ceil(log2(missing pages)) beyond it, plus one for payloads.
func TestRoundsWithinBounds(t *testing.T) {
	pol := small(t)
	w := newWorld(t, pol)
	const total = 2000 // 200 pages
	w.appendN(t, 0, total, 0)
	w.publish(t)
	for _, missing := range []int{1, 5, 10, 35, 45, 100, 333, 1000, 1999, 2000} {
		cur := remotelog.Cursor{}
		if missing < total {
			var all []remotelog.Message
			all, _, _, _ = read(t, w, w, remotelog.Cursor{})
			m := all[total-missing-1]
			cur = remotelog.Cursor{Seq: m.Seq, ID: m.ID}
		}
		got, _, st, err := read(t, w, w, cur)
		if err != nil || len(got) != missing {
			t.Fatalf("missing %d: got %d, %v", missing, len(got), err)
		}
		pages := (missing+9)/10 + 1
		bound := 2 + int(math.Ceil(math.Log2(float64(pages))))
		if pages <= pol.Window+1 {
			bound = 2
		}
		if st.Rounds > bound {
			t.Errorf("missing %d (%d pages): %d rounds, bound %d", missing, pages, st.Rounds, bound)
		}
		t.Logf("missing %d: %d rounds (bound %d), %d pages fetched", missing, st.Rounds, bound, st.Pages)
	}
}

func TestDuplicateBodiesGetDistinctIDs(t *testing.T) {
	w := newWorld(t, small(t))
	ctx := context.Background()
	same := [][]byte{[]byte("ping"), []byte("ping"), []byte("ping")}
	first, err := w.w.Append(ctx, group, same) // one clock reading: one second
	if err != nil {
		t.Fatal(err)
	}
	w.reopen(t) // the newest second's ids must come back from disk
	w.clock.t = w.clock.t.Add(-time.Second)
	again, err := w.w.Append(ctx, group, same[:1])
	if err != nil {
		t.Fatal(err)
	}
	all := append(first, again...)
	seen := map[mvds.MessageID]bool{}
	for i, a := range all {
		if seen[a.ID] {
			t.Fatalf("message %d repeats an id", i+1)
		}
		seen[a.ID] = true
		if i > 0 && a.Timestamp < all[i-1].Timestamp {
			t.Fatalf("timestamps decrease: %d after %d", a.Timestamp, all[i-1].Timestamp)
		}
	}
	if all[0].Timestamp+3 != all[3].Timestamp {
		t.Errorf("timestamps %d..%d: each repeat should take the next second", all[0].Timestamp, all[3].Timestamp)
	}
}

func TestForkIsDetected(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 30, 0)
	w.publish(t)
	_, cur, _, err := read(t, w, w, remotelog.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	// Another history under the same name: a new writer with the same key
	// and an empty log publishes different messages with a higher sequence.
	other := newWorld(t, small(t))
	other.appendN(t, 1000, 40, 0)
	other.publish(t)
	other.publish(t) // sequence 2: a one-sequence fork is caught at the record (TestRecordFork)
	delivered := 0
	_, _, err = remotelog.CatchUp(context.Background(), other, other.w.Name(), cur, remotelog.ReadOptions{Now: w.clock.Now}, func(remotelog.Message) error { delivered++; return nil })
	if !errors.Is(err, remotelog.ErrFork) || delivered != 0 {
		t.Fatalf("got %v after %d messages, want ErrFork before any", err, delivered)
	}
	if !strings.Contains(err.Error(), "message 30") {
		t.Errorf("error does not name the message: %v", err)
	}
}
