package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"rlog/remotelog"
)

// TestSyncStatusWaitPollsAfresh: the owner owes records on the first polls
// and nothing after; `sync status --wait` returns once nothing is owed. A
// poll that decoded into the struct of the one before kept the stale
// records (absent when empty) and waited out its whole deadline.
func TestSyncStatusWaitPollsAfresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if code, _, errs := rlogIn(t, dir, "", "init"); code != exitOK {
		t.Fatalf("init: %s", errs)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	var polls atomic.Int64
	srv := remotelog.NewServer(repo, nil, nil)
	srv.Status = func() any {
		st := syncStatus{ID: "12D3KooWtest", Group: "00", Peers: []peerStatus{{ID: "p", Connected: true}}, Pending: map[string]int{"p": 0}}
		if polls.Add(1) <= 2 {
			st.Records = []recordStatus{{Type: "message", Peer: "p", ID: "aa", SendCount: 1}}
			st.Pending["p"] = 1
		}
		return st
	}
	serveOwnerControl(t, dir, srv)

	code, out, errs := rlogIn(t, dir, "", "sync", "status", "--wait", "60s", "--json")
	if code != exitOK {
		t.Fatalf("sync status --wait: exit %d after %d polls: %s", code, polls.Load(), errs)
	}
	var st syncStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if len(st.Records) != 0 || st.Pending["p"] != 0 {
		t.Errorf("printed a stale status: %s", out)
	}
	if polls.Load() < 3 {
		t.Errorf("returned after %d polls, before the owner owed nothing", polls.Load())
	}
	if !strings.Contains(out, `"pending_records_per_peer"`) {
		t.Errorf("status without its pending counts: %s", out)
	}
}

// serveOwnerControl serves srv's control handler on the socket of the repo
// in dir until the test ends, as a process owning the repo does.
func serveOwnerControl(t *testing.T, dir string, srv *remotelog.Server) {
	t.Helper()
	ln, err := remotelog.ListenControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.ControlServer()
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
}
