package netproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A restart drops the connections and answers again on the same address;
// OnAnswer hears whole answers only, not cut ones; a connection made while
// the proxy is down is dropped.
func TestRestartAndAnswers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 1000))
	}))
	defer up.Close()
	var answers atomic.Int32
	px := StartTB(t, up.URL, Options{CutEvery: 2, OnAnswer: func(string) { answers.Add(1) }})
	get := func() error {
		resp, err := http.Get(px.URL + "/a")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("first request: %v", err)
	}
	if err := get(); err == nil {
		t.Fatal("the second request (cut) read whole")
	}
	px.down.Store(true)
	if err := get(); err == nil {
		t.Fatal("a request while down was answered")
	}
	px.down.Store(false)
	if err := px.Restart(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil { // the third to reach the proxy: not cut
		t.Fatalf("after the restart: %v", err)
	}
	if n := answers.Load(); n != 2 {
		t.Errorf("%d answers heard, want 2", n)
	}
	if c := px.Counts(); c.Restarts != 1 || c.Cut != 1 {
		t.Errorf("counts %+v: want 1 restart, 1 cut", c)
	}
}
