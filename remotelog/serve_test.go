package remotelog_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"rlog/pager"
	"strings"
	"testing"
	"time"

	carv2 "github.com/ipld/go-car/v2"

	"rlog/remotelog"
)

// servedRepo is a repo with a published log, served by a Server on a real
// HTTP server on 127.0.0.1.
func servedRepo(t testing.TB) (*remotelog.Repo, *remotelog.Writer, *remotelog.Server, *httptest.Server) {
	return servedRepoWith(t, 8)
}

// servedRepoWith is servedRepo with pages of at most pageEntries entries.
func servedRepoWith(t testing.TB, pageEntries int) (*remotelog.Repo, *remotelog.Writer, *remotelog.Server, *httptest.Server) {
	t.Helper()
	cfg, _ := remotelog.DefaultConfig("paged")
	cfg.Policy.PageEntries = pageEntries
	return servedRepoConfig(t, cfg)
}

// servedRepoConfig is servedRepo with a repo made with cfg.
func servedRepoConfig(t testing.TB, cfg remotelog.Config) (*remotelog.Repo, *remotelog.Writer, *remotelog.Server, *httptest.Server) {
	t.Helper()
	repo := openNewRepoWith(t, "repo", func(c *remotelog.Config) { *c = cfg })
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	srv := remotelog.NewServer(repo, w, nil)
	h, err := srv.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return repo, w, srv, hs
}

func TestServeIsATrustlessGateway(t *testing.T) {
	repo, w, srv, hs := servedRepo(t)
	ctx := context.Background()
	var bodies [][]byte
	for i := range 30 {
		bodies = append(bodies, body(i))
	}
	w.Append(ctx, repo.DefaultGroup(), bodies)
	res, err := srv.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src, err := remotelog.OpenSource(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, _, err := readAll(t, src, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil || len(got) != 30 {
		t.Fatalf("read through rlog serve: %d messages, %v", len(got), err)
	}
	get := func(path string, header ...string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		for i := 0; i < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	// Immutable blocks, the record with its TTL.
	if cc := get("/ipfs/" + res.Head.String() + "?format=raw").Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("raw block Cache-Control %q", cc)
	}
	if cc := get("/ipns/" + w.Name().String() + "?format=ipns-record").Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=60") {
		t.Errorf("record Cache-Control %q (TTL is one minute)", cc)
	}
	// CAR responses: the head alone, or the whole log (pages, index
	// nodes, the head's window node and tail pieces).
	hb, _ := io.ReadAll(get("/ipfs/" + res.Head.String() + "?format=raw").Body)
	hp, err := pager.Decode(hb)
	if err != nil || !hp.Node.Defined() {
		t.Fatalf("the head: %v (want a v3 head with a window node)", err)
	}
	all := int(res.Pages+res.IndexNodes) + 1 + len(hp.Tail)
	for scope, want := range map[string]int{"block": 1, "all": all} {
		resp := get("/ipfs/"+res.Head.String()+"?format=car&dag-scope="+scope, "Accept", "application/vnd.ipld.car")
		br, err := carv2.NewBlockReader(resp.Body)
		if err != nil {
			t.Fatalf("dag-scope=%s: %v", scope, err)
		}
		n := 0
		for {
			if _, err := br.Next(); err != nil {
				break
			}
			n++
		}
		if n != want {
			t.Errorf("dag-scope=%s: %d blocks, want %d", scope, n, want)
		}
	}
}

func TestServePushesHeads(t *testing.T) {
	repo, w, srv, hs := servedRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/rlog/v1/events?name="+w.Name().String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Scan() // the stream's opening comment: subscribed
	w.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("pushed")})
	res, err := srv.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ev remotelog.HeadEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Head != res.Head.String() || ev.Messages != 1 || ev.RecordSeq != res.RecordSeq {
				t.Fatalf("event %+v, published %+v", ev, res)
			}
			return
		}
	}
	t.Fatalf("stream ended without an event: %v", sc.Err())
}

// TestShutdownEndsEventStreams: a graceful shutdown of the gateway does not
// wait for its followers: their event streams end at once.
func TestShutdownEndsEventStreams(t *testing.T) {
	repo, _, srv, _ := servedRepo(t)
	h, err := srv.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	hs.RegisterOnShutdown(srv.CloseStreams)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	ctx := context.Background()
	src, err := remotelog.OpenSource(ctx, "http://"+ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	push, err := src.(remotelog.Subscriber).Subscribe(ctx, repo.Name()) // returns once the stream is open
	if err != nil {
		t.Fatal(err)
	}
	// Without CloseStreams this waits for the follower until the deadline.
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("serve: %v", err)
	}
	for range push { // ends when the stream does
	}
}

func TestControlAppendsThroughTheOwner(t *testing.T) {
	repo, _, srv, _ := servedRepo(t)
	serveControl(t, repo, srv)
	owner, err := remotelog.DialControl(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := owner.Append(ctx, repo.DefaultGroup(), [][]byte{[]byte("via"), []byte("owner")})
	if err != nil || len(out) != 2 || out[1].Seq != 2 || !bytes.Equal(out[1].Body, []byte("owner")) {
		t.Fatalf("append through the owner: %+v %v", out, err)
	}
	res, err := owner.Publish(ctx, remotelog.PublishOptions{})
	if err != nil || res.Messages != 2 || !res.Head.Defined() {
		t.Fatalf("publish through the owner: %+v %v", res, err)
	}
}

// serveControl serves srv's control handler on repo's control socket until
// the test ends.
func serveControl(t *testing.T, repo *remotelog.Repo, srv *remotelog.Server) {
	t.Helper()
	ln, err := remotelog.ListenControl(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.ControlServer()
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
}
