package remotelog_test

import (
	"context"
	"testing"

	"rlog/remotelog"
)

// TestLocalSourceBudget: a catch-up from a repo on disk (a local source)
// holds the 4 MiB local budget by default, so a log of about 10 MiB takes
// more waves than with the default budget of a network source; CAR files
// are local too.
func TestLocalSourceBudget(t *testing.T) {
	ctx := context.Background()
	dir, repo, w := newRepoWriter(t, 0)
	bodies := make([][]byte, 4_000)
	for i := range bodies {
		bodies[i] = make([]byte, 256)
		bodies[i][0] = byte(i)
	}
	for range 10 {
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	name := w.Name()
	w.Close()
	repo.Close()

	src, err := remotelog.OpenSource(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if l, ok := src.(remotelog.LocalSource); !ok || !l.Local() {
		t.Fatalf("a repo on disk (%T) is not a local source", src)
	}
	rounds := func(opts remotelog.ReadOptions) int {
		t.Helper()
		_, st, err := remotelog.CatchUp(ctx, src, name, remotelog.Cursor{}, opts, func(remotelog.Message) error { return nil })
		if err != nil || st.Messages != 40_000 {
			t.Fatalf("%d messages, %v", st.Messages, err)
		}
		return st.Rounds
	}
	local := rounds(remotelog.ReadOptions{})
	wide := rounds(remotelog.ReadOptions{MemoryBudget: remotelog.DefaultMemoryBudget})
	same := rounds(remotelog.ReadOptions{MemoryBudget: remotelog.LocalMemoryBudget})
	t.Logf("rounds: default %d, network default %d, 4 MiB %d", local, wide, same)
	// A wave takes what is free when it starts, so the last wave may
	// reach the end one round earlier or later from run to run.
	if local < same-1 || local > same+1 || local <= wide+1 {
		t.Errorf("default from a local source: %d rounds, want those of the 4 MiB budget (%d, give or take the last wave), more than the network default budget's (%d)", local, same, wide)
	}

	for _, s := range []remotelog.LocalSource{&remotelog.CARSource{}, &remotelog.CARBlocks{}} {
		if !s.Local() {
			t.Errorf("%T is not local", s)
		}
	}
}
