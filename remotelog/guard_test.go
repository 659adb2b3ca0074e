package remotelog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"

	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

// linkedServed is a served `linked` log (one message a page, every payload
// a pointer) of n messages: the deepest DAG a log makes, whose skip links
// reach page 0 by exponentially many paths.
func linkedServed(t testing.TB, n int) (*remotelog.Server, *httptest.Server, remotelog.PublishResult, ipns.Name) {
	t.Helper()
	cfg, err := remotelog.DefaultConfig("linked")
	if err != nil {
		t.Fatal(err)
	}
	// Format v1: its skip links make the deep lattice these guards are for
	// (a v2 log's sealed pages link only their predecessor); servers still
	// serve v1 logs.
	cfg.Policy.Format = 1
	repo, w, srv, hs := servedRepoConfig(t, cfg)
	ctx := context.Background()
	var bodies [][]byte
	for i := range n {
		bodies = append(bodies, body(i))
	}
	if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
		t.Fatal(err)
	}
	res, err := srv.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return srv, hs, res, w.Name()
}

func httpGet(t testing.TB, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return httpDo(t, http.MethodGet, url, header...)
}

func httpDo(t testing.TB, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, b
}

// TestServeRefusesDuplicateBlockCARs: on a deep `linked` log, where a walk
// sending every path would not end, dups=y is refused at once (406, in the
// Accept header or as car-dups), and the default walk sends each block once.
func TestServeRefusesDuplicateBlockCARs(t *testing.T) {
	const n = 64
	_, hs, res, _ := linkedServed(t, n)
	head := hs.URL + "/ipfs/" + res.Head.String()
	for _, req := range [][]string{
		{head, "Accept", "application/vnd.ipld.car; version=1; order=dfs; dups=y"},
		{head + "?format=car&car-dups=y"},
		{head + "?format=car&dag-scope=all", "Accept", "application/vnd.ipld.car;dups=y"},
	} {
		resp, b := httpGet(t, req[0], req[1:]...)
		if resp.StatusCode != http.StatusNotAcceptable || !strings.Contains(string(b), "dups=n") {
			t.Errorf("%v: %s %q, want 406 saying to ask dups=n", req, resp.Status, b)
		}
	}
	resp, b := httpGet(t, head, "Accept", "application/vnd.ipld.car; version=1; order=dfs; dups=n")
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "dups=n") {
		t.Fatalf("dups=n: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	_, blocks := carBlocks(t, b)
	seen := map[cid.Cid]bool{}
	for _, blk := range blocks {
		c := blk.Cid()
		if seen[c] {
			t.Fatalf("dups=n sent %s twice", c)
		}
		seen[c] = true
	}
	if len(blocks) != 2*n { // a page and a payload per message
		t.Errorf("dups=n: %d blocks, want %d", len(blocks), 2*n)
	}
}

// TestServeCutsLongCARs: a CAR response past the server's limit ends as a
// truncated stream, never as one that reads as a complete CAR and never
// with text after the blocks.
func TestServeCutsLongCARs(t *testing.T) {
	srv, _, res, _ := linkedServed(t, 200)
	srv.MaxCARBytes = 4 << 10
	h, err := srv.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/ipfs/" + res.Head.String() + "?format=car")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %d bytes of a CAR over the limit: %v, want a truncated stream", len(b), err)
	}
	if len(b) > 4<<10 {
		t.Errorf("got %d bytes, limit 4096", len(b))
	}
	if bytes.Contains(b, []byte("Gateway Error")) {
		t.Errorf("text appended to the CAR")
	}
}

// TestServeRefusesLongPaths: each path segment is a block to load; rlog
// readers ask by CID, so a path of many segments is refused before any.
func TestServeRefusesLongPaths(t *testing.T) {
	_, hs, res, _ := linkedServed(t, 3)
	resp, b := httpGet(t, hs.URL+"/ipfs/"+res.Head.String()+strings.Repeat("/l/0/0", 40)+"?format=car")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "at most") {
		t.Fatalf("long path: %s %q", resp.Status, b)
	}
}

// TestServeProbeCAR: the trustless gateway probe, the empty identity
// block, is a valid CAR rooted at bafkqaaa (the header alone, as Kubo
// sends) and an empty raw block.
func TestServeProbeCAR(t *testing.T) {
	_, hs, _, _ := linkedServed(t, 1)
	for _, req := range [][]string{
		{hs.URL + "/ipfs/bafkqaaa?format=car"},
		{hs.URL + "/ipfs/bafkqaaa", "Accept", "application/vnd.ipld.car"},
	} {
		resp, b := httpGet(t, req[0], req[1:]...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%v: %s %q", req, resp.Status, b)
		}
		roots, blocks := carBlocks(t, b)
		if len(roots) != 1 || roots[0].String() != "bafkqaaa" || len(blocks) != 0 {
			t.Errorf("%v: roots %v, blocks %v; want root bafkqaaa, no blocks", req, roots, blocks)
		}
	}
	resp, b := httpGet(t, hs.URL+"/ipfs/bafkqaaa?format=raw")
	if resp.StatusCode != http.StatusOK || len(b) != 0 {
		t.Errorf("raw probe: %s, %d bytes", resp.Status, len(b))
	}
}

// TestServeCORS: pages of other origins may read the gateway and the
// routing answers, and their preflight requests are answered.
func TestServeCORS(t *testing.T) {
	_, hs, res, name := linkedServed(t, 1)
	for _, path := range []string{
		"/ipfs/" + res.Head.String() + "?format=raw",
		"/ipns/" + name.String() + "?format=ipns-record",
		"/routing/v1/ipns/" + name.String(),
	} {
		resp, _ := httpGet(t, hs.URL+path, "Origin", "https://elsewhere.example")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: %s, Access-Control-Allow-Origin %q", path, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		resp, _ = httpDo(t, http.MethodOptions, hs.URL+path, "Origin", "https://elsewhere.example",
			"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "range")
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Range") {
			t.Errorf("preflight %s: %s %v", path, resp.Status, resp.Header)
		}
	}
}

// TestServeDelegatedRoutingIPNS: GET /routing/v1/ipns/{name} answers the
// name's signed record, in any of the name's spellings.
func TestServeDelegatedRoutingIPNS(t *testing.T) {
	_, hs, res, name := linkedServed(t, 2)
	for _, spelling := range []string{name.String(), name.Peer().String(), must(name.Cid().StringOfBase(multibase.Base32))} {
		resp, b := httpGet(t, hs.URL+"/routing/v1/ipns/"+spelling, "Accept", "application/vnd.ipfs.ipns-record")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.ipfs.ipns-record" {
			t.Fatalf("%s: %s %q", spelling, resp.Status, resp.Header.Get("Content-Type"))
		}
		rec, err := ipns.UnmarshalRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipns.ValidateWithName(rec, name); err != nil {
			t.Fatalf("record: %v", err)
		}
		if v, _ := rec.Value(); v.String() != "/ipfs/"+res.Head.String() {
			t.Errorf("record value %s, head %s", v, res.Head)
		}
	}
	other := "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"
	if resp, _ := httpGet(t, hs.URL+"/routing/v1/ipns/"+other); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown name: %s, want 404", resp.Status)
	}
	if resp, _ := httpGet(t, hs.URL+"/routing/v1/ipns/not-a-name"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad name: %s, want 400", resp.Status)
	}
}

// TestServeRoutingCarriesTheHint: the record /routing/v1/ipns answers for
// a v3 log is the writer's, its signed hint included, and the hint names
// the head's window node and page start.
func TestServeRoutingCarriesTheHint(t *testing.T) {
	repo, w, srv, hs := servedRepoWith(t, 4)
	ctx := context.Background()
	if _, err := w.Append(ctx, repo.DefaultGroup(), [][]byte{body(0), body(1), body(2), body(3), body(4), body(5)}); err != nil {
		t.Fatal(err)
	}
	res, err := srv.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, b := httpGet(t, hs.URL+"/routing/v1/ipns/"+w.Name().String(), "Accept", "application/vnd.ipfs.ipns-record")
	rec, err := namesys.Parse(w.Name(), b, time.Now())
	if err != nil || !rec.Hint.Node.Defined() {
		t.Fatalf("the record without its hint: %+v, %v", rec, err)
	}
	_, hb := httpGet(t, hs.URL+"/ipfs/"+res.Head.String()+"?format=raw")
	if hp, err := pager.Decode(hb); err != nil || hp.Node != rec.Hint.Node || hp.PageStart() != rec.Hint.PageStart || rec.Hint.PageStart != 5 {
		t.Errorf("the record hints %+v; the head: %v", rec.Hint, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestServeDelegatedRoutingProviders: for a block it holds, the server
// names itself as a trustless gateway provider, at the address it was
// reached by; for others, none (404).
func TestServeDelegatedRoutingProviders(t *testing.T) {
	_, hs, res, name := linkedServed(t, 2)
	u, _ := url.Parse(hs.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	wantAddr := "/ip4/" + host + "/tcp/" + port + "/http"
	resp, b := httpGet(t, hs.URL+"/routing/v1/providers/"+res.Head.String(), "Accept", "application/json")
	var got struct{ Providers []map[string]any }
	if err := json.Unmarshal(b, &got); err != nil || resp.StatusCode != http.StatusOK || len(got.Providers) != 1 {
		t.Fatalf("providers: %s %q %v", resp.Status, b, err)
	}
	p := got.Providers[0]
	if p["Schema"] != "peer" || p["ID"] != name.Peer().String() || fmt.Sprint(p["Addrs"]) != "["+wantAddr+"]" || fmt.Sprint(p["Protocols"]) != "[transport-ipfs-gateway-http]" {
		t.Errorf("provider %v, want this server at %s", p, wantAddr)
	}
	resp, b = httpGet(t, hs.URL+"/routing/v1/providers/"+res.Head.String(), "Accept", "application/x-ndjson")
	if resp.Header.Get("Content-Type") != "application/x-ndjson" || !bytes.Contains(b, []byte(wantAddr)) || bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("ndjson providers: %q %q", resp.Header.Get("Content-Type"), b)
	}
	absent := "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	if resp, _ := httpGet(t, hs.URL+"/routing/v1/providers/"+absent); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a block not held: %s, want 404", resp.Status)
	}
}

// TestServeCutsFailedCARs: a walk the gateway cannot finish (a `linked`
// log deeper than its 1,024-level depth limit) ends as a truncated
// stream, never with error text appended to the CAR.
func TestServeCutsFailedCARs(t *testing.T) {
	_, hs, res, _ := linkedServed(t, 1100)
	resp, err := http.Get(hs.URL + "/ipfs/" + res.Head.String() + "?format=car")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %d bytes of a CAR the gateway could not finish: %v, want a truncated stream", len(b), err)
	}
	if bytes.Contains(b, []byte("Gateway Error")) {
		t.Errorf("text appended to the CAR")
	}
}
