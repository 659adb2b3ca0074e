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
	heard := make(chan struct{}, 16)
	px := StartTB(t, up.URL, Options{CutEvery: 2, OnAnswer: func(string) { answers.Add(1); heard <- struct{}{} }})
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
	// The proxy hears an answer once its handler ends, which may be after
	// the client read the last byte.
	for range 2 {
		select {
		case <-heard:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d answers heard, want 2", answers.Load())
		}
	}
	if n := answers.Load(); n != 2 {
		t.Errorf("%d answers heard, want 2", n)
	}
	if c := px.Counts(); c.Restarts != 1 || c.Cut != 1 {
		t.Errorf("counts %+v: want 1 restart, 1 cut", c)
	}
}

// A request that comes once the answer before it was read whole starts a
// round of its own, also when the proxy has not yet run the end of the
// handler that answered (a loaded machine): its request ended before its
// last byte went out. The bytes are counted by then too.
func TestRoundEndsBeforeTheLastByte(t *testing.T) {
	body := strings.Repeat("x", 100_000)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		io.WriteString(w, body)
	}))
	defer up.Close()
	release := make(chan struct{})
	px := StartTB(t, up.URL, Options{OnAnswer: func(path string) {
		if path == "/first" {
			<-release // the handler of the first request has not ended
		}
	}})
	// A proxy that held the first answer's end until its handler ended
	// would never answer it whole here: the client gives up instead. Each
	// request on a connection of its own, as a wave's are: on the same
	// connection the second would wait for the first handler's end.
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) {
		resp, err := client.Get(px.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b, err := io.ReadAll(resp.Body); err != nil || len(b) != len(body) {
			t.Fatalf("%s: %d bytes, %v", path, len(b), err)
		}
	}
	get("/first")
	get("/second")
	c := px.Counts()
	close(release)
	if c.Rounds != 2 || c.Requests != 2 {
		t.Errorf("two requests one after the other: %d rounds, %d requests; want 2 and 2", c.Rounds, c.Requests)
	}
	if c.Bytes != 2*int64(len(body)) {
		t.Errorf("%d bytes counted, want %d", c.Bytes, 2*len(body))
	}
}
