package remotelog_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/pager"
	"rlog/remotelog"
)

// chrome finds headless Chromium (.ci/web.sh installs the distribution's
// chromium-headless-shell): a test skips without it, and fails under CI.
func chrome(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("RLOG_CHROME"), "chromium-headless-shell", "/usr/lib/chromium/chrome-headless-shell", "chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	missing(t, "no headless Chromium (install chromium-headless-shell, or run .ci/web.sh)")
	return ""
}

// missing skips a test that needs outside software, or fails it in CI.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI: %s", why)
	}
	t.Skip(why)
}

// browser starts headless Chromium for the test.
func browser(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// waitJS waits until the expression is true in the page, up to a generous
// deadline.
func waitJS(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// An error the page shows ends the wait too: it will not go away.
	until := fmt.Sprintf(`(%s) || window.rlogStats?.errors.length > 0`, expr)
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](until, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0)))
	if err == nil {
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && !ok {
			err = fmt.Errorf("the page failed")
		}
	}
	if err != nil {
		status, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		t.Fatalf("waiting for %s (%s): %v; page status: %q", what, expr, err, status)
	}
}

func evalJS[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// pageURL is the web page of server at base reading name from gateway.
func pageURL(base, name, gateway string) string {
	return base + "/#" + url.Values{"name": {name}, "gateway": {gateway}}.Encode()
}

// servedLog serves a `paged` log of n messages.
func servedLog(t testing.TB, n int) (*remotelog.Repo, *remotelog.Writer, *remotelog.Server, *httptest.Server) {
	t.Helper()
	cfg, err := remotelog.DefaultConfig("paged")
	if err != nil {
		t.Fatal(err)
	}
	repo, w, srv, hs := servedRepoConfig(t, cfg)
	t.Cleanup(srv.CloseStreams) // before the server closes: the page's event stream
	ctx := context.Background()
	for i := 0; i < n; i += 10000 {
		var bodies [][]byte
		for j := i; j < min(n, i+10000); j++ {
			bodies = append(bodies, body(j))
		}
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	return repo, w, srv, hs
}

// TestWebPageInBrowser: in headless Chromium, the page served at / reads a
// 10,000-message log (the newest 100, every block and the record verified
// in the browser), shows a new publish pushed by the server's head events,
// says when it is behind, and refuses a tampered block from a gateway.
func TestWebPageInBrowser(t *testing.T) {
	ctx := browser(t)
	repo, w, srv, hs := servedLog(t, 10000)
	name := w.Name().String()

	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL(hs.URL, name, hs.URL))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the newest message", `document.querySelector('#log li[data-seq="10000"]') !== null`)
	if n := evalJS[int](t, ctx, `document.querySelectorAll('#log li').length`); n != 100 {
		t.Errorf("shows %d messages, want the newest 100", n)
	}
	if got := evalJS[string](t, ctx, `document.querySelector('#log li[data-seq="9901"] .body').textContent`); got != string(body(9900)) {
		t.Errorf("message 9901 reads %q, want %q", got, body(9900))
	}
	if s := evalJS[string](t, ctx, `document.getElementById('summary').textContent`); !strings.Contains(s, "signature verified") || !strings.Contains(s, "10000 messages") {
		t.Errorf("summary %q", s)
	}
	t.Logf("opened: newest 100 of 10,000 messages shown %.1f ms after opening", evalJS[float64](t, ctx, `rlogStats.firstShownMs`))

	// Live: the page hears of a publish from the event stream.
	waitJS(t, ctx, "the event stream", `document.getElementById('live').textContent === 'live: head events'`)
	c := context.Background()
	w.Append(c, repo.DefaultGroup(), [][]byte{[]byte("pushed live")})
	if _, err := srv.Publish(c); err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	waitJS(t, ctx, "the pushed message", `document.querySelector('#log li[data-seq="10001"]') !== null`)
	shown := evalJS[float64](t, ctx, `rlogStats.shown[10001]`)
	t.Logf("pushed: message 10001 shown %.0f ms after its publish returned", shown-float64(published.UnixMilli()))
	if got := evalJS[string](t, ctx, `document.querySelector('#log li[data-seq="10001"] .body').textContent`); got != "pushed live" {
		t.Errorf("message 10001 reads %q", got)
	}
	if n := evalJS[int](t, ctx, `rlogStats.eventRecords || 0`); n == 0 {
		t.Errorf("the page fetched the record the event carried")
	}
	waitJS(t, ctx, "caught up", `document.getElementById('sync').textContent === 'caught up'`)

	// A head event ahead of the record the gateway serves (a keeper that
	// heard of a head first): the page says how far behind it is, until
	// the record catches up.
	srv.Announce(remotelog.HeadEvent{Name: name, Messages: 10002})
	waitJS(t, ctx, "behind by 1", `document.getElementById('sync').textContent === 'behind by 1'`)
	w.Append(c, repo.DefaultGroup(), [][]byte{[]byte("caught up again")})
	if _, err := srv.Publish(c); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "caught up after 10002", `document.querySelector('#log li[data-seq="10002"]') !== null && document.getElementById('sync').textContent === 'caught up'`)

	// Another gateway that alters one sealed page: the page is refused.
	sealed := previousPage(t, hs.URL, name)
	bad := tampering(t, hs.URL, sealed)
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL(hs.URL, name, bad.URL))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the refusal", `document.getElementById('status').className === 'error'`)
	status := evalJS[string](t, ctx, `document.getElementById('status').textContent`)
	if !strings.Contains(status, "Refused") || !strings.Contains(status, sealed.String()) || !strings.Contains(status, "do not match its hash") {
		t.Errorf("status %q, want the tampered block %s refused", status, sealed)
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('#log li').length`); n != 0 {
		t.Errorf("shows %d messages from a tampered log", n)
	}

	// Back on the server's own gateway, 150 at once: the newest 100,
	// after a marked gap.
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL(hs.URL, name, hs.URL))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the event stream again", `document.getElementById('live').textContent === 'live: head events'`)
	var more [][]byte
	for i := range 150 {
		more = append(more, body(20000+i))
	}
	w.Append(c, repo.DefaultGroup(), more)
	if _, err := srv.Publish(c); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "message 10152", `document.querySelector('#log li[data-seq="10152"]') !== null`)
	if gap := evalJS[string](t, ctx, `document.querySelector('#log li.gap').textContent`); gap != "… messages 10003–10052 not shown" {
		t.Errorf("gap %q", gap)
	}
	if evalJS[bool](t, ctx, `document.querySelector('#log li[data-seq="10052"]') !== null`) || !evalJS[bool](t, ctx, `document.querySelector('#log li[data-seq="10053"]') !== null`) {
		t.Errorf("want messages from 10053 on after the gap")
	}
}

// previousPage is the CID of the sealed page before the head of name.
func previousPage(t testing.TB, base, name string) cid.Cid {
	t.Helper()
	_, raw := httpGet(t, base+"/ipns/"+name+"?format=ipns-record")
	rec, err := remotelogRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, b := httpGet(t, base+"/ipfs/"+rec.String()+"?format=raw")
	pg, err := pager.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if pg.Node.Defined() { // v3: the window is in the head's window node
		_, nb := httpGet(t, base+"/ipfs/"+pg.Node.String()+"?format=raw")
		wn, err := pager.DecodeWindowNode(nb)
		if err != nil {
			t.Fatal(err)
		}
		if err := pg.Attach(pg.Node, wn); err != nil {
			t.Fatal(err)
		}
	}
	if len(pg.Window) == 0 {
		t.Fatal("the head names no sealed page")
	}
	return pg.Window[0].Cid
}

// tampering is a gateway in front of upstream that flips a byte of block
// c, and passes everything else on.
func tampering(t testing.TB, upstream string, c cid.Cid) *httptest.Server {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Request.URL.Path, "/ipfs/"+c.String()) {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0x01
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	hs := httptest.NewServer(rp)
	t.Cleanup(func() {
		hs.CloseClientConnections() // a page's event stream through it
		hs.Close()
	})
	return hs
}

// remotelogRecord is the head a signed record points at (unverified: the
// server under test made it).
func remotelogRecord(raw []byte) (cid.Cid, error) {
	rec, err := ipns.UnmarshalRecord(raw)
	if err != nil {
		return cid.Undef, err
	}
	v, err := rec.Value()
	if err != nil {
		return cid.Undef, err
	}
	return cid.Decode(strings.TrimPrefix(v.String(), "/ipfs/"))
}

// BenchmarkWebPage: in headless Chromium, the page opening a
// 100,000-message log until its newest 100 messages are shown, verified
// (open-ms), and a publish pushed to it until the page shows the message
// (push-ms, from the publish returning), on loopback.
func BenchmarkWebPage(b *testing.B) {
	ctx := browser(b)
	repo, w, srv, hs := servedLog(b, 100000)
	name := w.Name().String()
	c := context.Background()
	var open, push, event, record, head []float64 // from the publish returning
	seq := 100000
	for b.Loop() {
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(pageURL(hs.URL, name, hs.URL))); err != nil {
			b.Fatal(err)
		}
		waitJS(b, ctx, "the newest message", fmt.Sprintf(`document.querySelector('#log li[data-seq="%d"]') !== null`, seq))
		open = append(open, evalJS[float64](b, ctx, `rlogStats.firstShownMs`))
		waitJS(b, ctx, "the event stream", `document.getElementById('live').textContent === 'live: head events'`)
		w.Append(c, repo.DefaultGroup(), [][]byte{[]byte("pushed")})
		if _, err := srv.Publish(c); err != nil {
			b.Fatal(err)
		}
		published := time.Now()
		seq++
		waitJS(b, ctx, "the pushed message", fmt.Sprintf(`document.querySelector('#log li[data-seq="%d"]') !== null`, seq))
		at := float64(published.UnixMilli())
		push = append(push, evalJS[float64](b, ctx, fmt.Sprintf(`rlogStats.shown[%d]`, seq))-at)
		event = append(event, evalJS[float64](b, ctx, `rlogStats.lastEventAt`)-at)
		record = append(record, evalJS[float64](b, ctx, `rlogStats.recordAt`)-at)
		head = append(head, evalJS[float64](b, ctx, `rlogStats.headAt`)-at)
	}
	for _, x := range [][]float64{event, record, head} {
		slices.Sort(x)
	}
	b.ReportMetric(event[len(event)/2], "event-ms")
	b.ReportMetric(record[len(record)/2], "record-ms")
	b.ReportMetric(head[len(head)/2], "head-ms")
	slices.Sort(open)
	slices.Sort(push)
	b.ReportMetric(open[len(open)/2], "open-ms")
	b.ReportMetric(push[len(push)/2], "push-ms")
	b.ReportMetric(push[len(push)-1], "max-push-ms")
}

// TestWebPageReadsKuboGateway: the page, served by rlog serve, reads a log
// published to Kubo through Kubo's own gateway (another origin, no head
// events: it polls), verifying it the same way.
func TestWebPageReadsKuboGateway(t *testing.T) {
	env := kuboEnv(t, "RLOG_KUBO_API", "RLOG_KUBO_GW")
	ctx := browser(t)
	_, _, _, hs := servedLog(t, 1) // the page's own server
	k := kuboBackend(t, env[0])
	w := kuboWriter(t, k, pager.Policy{PageEntries: 16, PageBytes: 64 << 10, InlineLimit: 1024, HeadInlineLimit: 4096, Window: 4})
	c := context.Background()
	var bodies [][]byte
	for i := range 200 {
		bodies = append(bodies, body(i))
	}
	if _, err := w.Append(c, group, bodies); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(c, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL(hs.URL, w.Name().String(), env[1]))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the newest message", `document.querySelector('#log li[data-seq="200"]') !== null`)
	if n := evalJS[int](t, ctx, `document.querySelectorAll('#log li').length`); n != 100 {
		t.Errorf("shows %d messages, want 100", n)
	}
	if got := evalJS[string](t, ctx, `document.querySelector('#log li[data-seq="101"] .body').textContent`); got != string(body(100)) {
		t.Errorf("message 101 reads %q", got)
	}
	waitJS(t, ctx, "polling", `document.getElementById('live').textContent.startsWith('no head events here')`)
}

// worldGateway serves w's blocks and records as a trustless gateway (raw
// blocks and IPNS records, nothing else), open to pages of other origins.
func worldGateway(t testing.TB, w *world) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Access-Control-Allow-Origin", "*")
		var b []byte
		var err error
		switch {
		case strings.HasPrefix(r.URL.Path, "/ipfs/") && r.URL.Query().Get("format") == "raw":
			var c cid.Cid
			if c, err = cid.Decode(strings.TrimPrefix(r.URL.Path, "/ipfs/")); err == nil {
				b, err = w.store.Get(r.Context(), c)
			}
		case strings.HasPrefix(r.URL.Path, "/ipns/") && r.URL.Query().Get("format") == "ipns-record":
			var n ipns.Name
			if n, err = ipns.NameFromString(strings.TrimPrefix(r.URL.Path, "/ipns/")); err == nil {
				b, err = w.names.Resolve(r.Context(), n)
			}
		default:
			http.NotFound(rw, r)
			return
		}
		if err != nil {
			http.Error(rw, err.Error(), http.StatusNotFound)
			return
		}
		rw.Write(b)
	}))
	t.Cleanup(hs.Close)
	return hs
}

// TestWebPageReadsChangedFormat: in headless Chromium, the page reads a
// log whose first 1,000 messages were written in format v1 and the next
// ones in v2 (its index lists v1 and v2 pages under a v2 head), and pages
// back with "older" across the change, every message checked.
func TestWebPageReadsChangedFormat(t *testing.T) {
	ctx := browser(t)
	_, _, _, hs := servedLog(t, 1) // the page's own server
	pol, _ := pager.Preset("paged")
	pol.PageEntries = 16
	pol.Window = 2
	pol.Format = pager.V1
	w := newWorld(t, pol)
	w.appendN(t, 0, 1000, 0)
	w.publish(t)
	w.cfg.Policy.Format = 0 // the default: v3
	w.reopen(t)
	w.appendN(t, 1000, 50, 0)
	res := w.publish(t)
	if hp := page(t, w, res.Head); hp.V() != pager.V3 || len(hp.Index) == 0 {
		t.Fatalf("head v%d with %d index links", hp.V(), len(hp.Index))
	}
	gw := worldGateway(t, w)
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL(hs.URL, w.w.Name().String(), gw.URL))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the newest message", `document.querySelector('#log li[data-seq="1050"]') !== null`)
	for _, seq := range []int{951, 1000, 1001, 1050} {
		if got := evalJS[string](t, ctx, fmt.Sprintf(`document.querySelector('#log li[data-seq="%d"] .body').textContent`, seq)); got != string(body(seq-1)) {
			t.Errorf("message %d reads %q, want %q", seq, got, body(seq-1))
		}
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('#log li').length`); n != 100 {
		t.Errorf("shows %d messages, want 100", n)
	}
	// Older, twice: messages 751..950 are on v1 pages found through the
	// v2 head's index.
	for _, first := range []int{851, 751} {
		evalJS[bool](t, ctx, `document.getElementById('older').click() === undefined`)
		waitJS(t, ctx, fmt.Sprintf("message %d", first), fmt.Sprintf(`document.querySelector('#log li[data-seq="%d"]') !== null`, first))
	}
	if got := evalJS[string](t, ctx, `document.querySelector('#log li[data-seq="751"] .body').textContent`); got != string(body(750)) {
		t.Errorf("message 751 reads %q", got)
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('#log li').length`); n != 300 {
		t.Errorf("shows %d messages, want 300: %s", n, evalJS[string](t, ctx, `Array.from(document.querySelectorAll('#log li'), (li) => li.dataset.seq).join(' ')`))
	}
	if errs := evalJS[[]string](t, ctx, `rlogStats.errors`); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// TestWebPageReadsTailPieces: in headless Chromium, the page reads a log
// of the default preset whose head holds only its newest messages (11)
// and links the rest of its page (769..989) in graded tail pieces, then
// pages back with "older" from the pieces into the sealed pages, every
// message checked.
func TestWebPageReadsTailPieces(t *testing.T) {
	ctx := browser(t)
	_, _, _, hs := servedLog(t, 1) // the page's own server
	pol, _ := pager.Preset("paged")
	w := newWorld(t, pol)
	w.appendN(t, 0, 1000, 0)
	res := w.publish(t)
	hp := page(t, w, res.Head)
	own := 769 + (232-pol.HeadEntries)/pol.TailEntries*pol.TailEntries // page 3 holds 232
	if len(hp.Tail) == 0 || hp.Tail[0].Start != 769 || hp.Start != uint64(own) {
		t.Fatalf("head with %d tail pieces, its own entries from %d, want %d", len(hp.Tail), hp.Start, own)
	}
	gw := worldGateway(t, w)
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL(hs.URL, w.w.Name().String(), gw.URL))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the newest message", `document.querySelector('#log li[data-seq="1000"]') !== null`)
	for _, first := range []int{801, 701} {
		evalJS[bool](t, ctx, `document.getElementById('older').click() === undefined`)
		waitJS(t, ctx, fmt.Sprintf("message %d", first), fmt.Sprintf(`document.querySelector('#log li[data-seq="%d"]') !== null`, first))
	}
	for _, seq := range []int{701, 768, 769, 784, 785, 901, 992, 993, own - 1, own, 1000} {
		if got := evalJS[string](t, ctx, fmt.Sprintf(`document.querySelector('#log li[data-seq="%d"] .body').textContent`, seq)); got != string(body(seq-1)) {
			t.Errorf("message %d reads %q, want %q", seq, got, body(seq-1))
		}
	}
	if got := evalJS[string](t, ctx, `Array.from(document.querySelectorAll('#log li'), (li) => li.dataset.seq).join(' ')`); got != seqs(701, 1000) {
		t.Errorf("shows %s, want 701..1000 in order", got)
	}
	if errs := evalJS[[]string](t, ctx, `rlogStats.errors`); len(errs) > 0 {
		t.Errorf("page errors: %q", errs)
	}
}

// seqs is from..to, space-separated.
func seqs(from, to int) string {
	out := make([]string, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return strings.Join(out, " ")
}
