package netproxy

import (
	"context"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options shape the proxied link.
type Options struct {
	// RTT is added to every request before it is forwarded.
	RTT time.Duration
	// CutEvery cuts every CutEvery-th response halfway (0: none).
	CutEvery int
	// CutRate cuts each response halfway with this probability, drawn
	// from a generator seeded with Seed.
	CutRate float64
	Seed    uint64
	// StallAfter, when positive, stops answering after that many requests:
	// later ones are held until their client gives up or Unstall.
	StallAfter int
	// RestartEvery, when positive, restarts the proxy (Restart) that often,
	// down for RestartDown each time (default 1 s), until Close.
	RestartEvery, RestartDown time.Duration
	// OnAnswer, when set, hears each response sent whole (not cut, not a
	// stream dropped by a restart) as it ends, with the request's path:
	// the moments a client had a successful contact.
	OnAnswer func(path string)
}

// Counts is what the proxy saw.
type Counts struct {
	Requests int   // requests forwarded
	Rounds   int   // sequential waves of requests
	Bytes    int64 // response body bytes sent to the client
	// HeaderBytes approximates the response status lines and headers.
	HeaderBytes int64
	Cut         int // responses cut halfway
	Stalled     int // requests held unanswered
	Restarts    int
}

// Proxy forwards to one target URL and counts.
type Proxy struct {
	URL string // where clients connect: http://127.0.0.1:PORT

	opts     Options
	srv      *http.Server
	inner    http.Handler
	ln       net.Listener
	conns    chan net.Conn // accepted, for the server of the moment
	down     atomic.Bool
	tr       *http.Transport
	mu       sync.Mutex
	c        Counts
	inFlight int
	paths    map[string]int
	rng      *rand.Rand
	seen     int // requests since Start, for CutEvery and StallAfter
	unstall  chan struct{}
	closed   chan struct{}
	restarts sync.WaitGroup
}

// Start serves a proxy to target on a loopback port until Close.
func Start(target string, opts Options) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &Proxy{opts: opts, paths: map[string]int{}, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		unstall: make(chan struct{}), closed: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	rp.Transport = tr
	rp.BufferPool = &bufferPool{}            // a benchmark's heap figure is the reader's, not the proxy's garbage
	rp.ErrorLog = log.New(io.Discard, "", 0) // a client that gave up is no news
	p.tr = tr
	p.inner = p.handler(rp)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.ln, p.conns = ln, make(chan net.Conn)
	p.URL = "http://" + ln.Addr().String()
	go p.accept()
	p.serve()
	if opts.RestartEvery > 0 {
		down := opts.RestartDown
		if down <= 0 {
			down = time.Second
		}
		p.restarts.Add(1)
		go func() {
			defer p.restarts.Done()
			t := time.NewTicker(opts.RestartEvery)
			defer t.Stop()
			for {
				select {
				case <-p.closed:
					return
				case <-t.C:
					p.restart(down)
				}
			}
		}()
	}
	return p, nil
}

// accept takes the connections to the proxy's one listening socket: while
// down, it drops them at once; otherwise it hands them to the server of
// the moment. The socket stays open across restarts: a port given up
// could be taken meanwhile, by another program's connection or by a
// client dialing it (a TCP self-connect).
func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		select {
		case p.conns <- c:
		case <-p.closed:
			c.Close()
			return
		}
	}
}

// genListener is the listener of one server between two restarts.
type genListener struct {
	p    *Proxy
	done chan struct{}
	once sync.Once
}

func (l *genListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.p.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *genListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *genListener) Addr() net.Addr { return l.p.ln.Addr() }

func (p *Proxy) serve() {
	srv := &http.Server{Handler: p.inner}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go srv.Serve(&genListener{p: p, done: make(chan struct{})})
}

// StartTB starts a proxy for a test or benchmark, which fails if it
// cannot, and closes it when tb ends.
func StartTB(tb testing.TB, target string, opts Options) *Proxy {
	tb.Helper()
	p, err := Start(target, opts)
	if err != nil {
		tb.Fatalf("netproxy: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

// Close stops the proxy and closes its connections to the target.
func (p *Proxy) Close() {
	p.Unstall()
	close(p.closed)
	p.restarts.Wait()
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	srv.Close()
	p.ln.Close()
	p.tr.CloseIdleConnections()
}

// Restart drops every connection, drops new ones at once for down (a
// client sees its connection closed or reset, as from a server that is
// not there), then answers again on the same address, as a restarting
// server does.
func (p *Proxy) Restart(down time.Duration) error {
	p.restart(down)
	return nil
}

// restart is Restart; the down time ends early on Close.
func (p *Proxy) restart(down time.Duration) {
	p.mu.Lock()
	srv := p.srv
	p.c.Restarts++
	p.mu.Unlock()
	p.down.Store(true)
	srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	wait(ctx, down)
	p.down.Store(false)
	p.serve()
}

// Unstall answers the requests held by StallAfter, and all later ones.
func (p *Proxy) Unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.unstall:
	default:
		close(p.unstall)
	}
}

// Counts returns the counts so far.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c
}

// Reset zeroes the counts.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c = Counts{}
	p.paths = map[string]int{}
}

// Repeated returns the paths requested more than once, with their counts.
func (p *Proxy) Repeated() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, n := range p.paths {
		if n > 1 {
			out[k] = n
		}
	}
	return out
}

func (p *Proxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		if p.inFlight == 0 {
			p.c.Rounds++
		}
		p.inFlight++
		p.c.Requests++
		p.paths[r.URL.Path]++
		p.seen++
		stall := p.opts.StallAfter > 0 && p.seen > p.opts.StallAfter
		cut := (p.opts.CutEvery > 0 && p.seen%p.opts.CutEvery == 0) || (p.opts.CutRate > 0 && p.rng.Float64() < p.opts.CutRate)
		if stall {
			p.c.Stalled++
		}
		unstall := p.unstall
		p.mu.Unlock()
		cw := &countingWriter{ResponseWriter: rw, p: p, want: -1}
		defer cw.finish()
		if p.opts.RTT > 0 && !wait(r.Context(), p.opts.RTT) {
			return
		}
		if stall {
			select {
			case <-unstall:
			case <-r.Context().Done():
				return
			}
		}
		if cut {
			next.ServeHTTP(&cutWriter{countingWriter: cw}, r)
			// A body too short to cut, sent whole.
		} else {
			next.ServeHTTP(cw, r)
		}
		cw.finish()
		if p.opts.OnAnswer != nil && r.Context().Err() == nil {
			p.opts.OnAnswer(r.URL.Path)
		}
	})
}

// cutWriter sends half of a response whose length is known (the headers
// still promise all of it), or the first write of a stream, then drops
// the connection.
type cutWriter struct {
	*countingWriter
	limit int64 // bytes to send before the cut; -1 until the headers
}

func (w *cutWriter) WriteHeader(code int) {
	w.countingWriter.WriteHeader(code)
	w.limit = max(w.want, 0) / 2 // the body's length, read by countingWriter
}

func (w *cutWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.limit == 0 || w.n+int64(len(b)) > w.limit {
		if rest := w.limit - w.n; rest > 0 {
			w.countingWriter.Write(b[:rest])
		} else if w.limit == 0 && w.n == 0 && len(b) > 1 {
			w.countingWriter.Write(b[:len(b)/2]) // a stream: half its first write
		}
		w.countingWriter.Flush()
		w.p.mu.Lock()
		w.p.c.Cut++
		w.p.mu.Unlock()
		w.countingWriter.finish()
		panic(http.ErrAbortHandler) // the server drops the connection, quietly
	}
	return w.countingWriter.Write(b)
}

// wait sleeps d, or less if ctx ends first; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// countingWriter counts a response and ends its request in the proxy's
// counts before the response's last byte is written: a client that gets
// the whole answer and asks again at once must find the request ended,
// or its next request would join the round of this one on a machine slow
// to run the handler's end (a response without a known length ends when
// the handler does).
type countingWriter struct {
	http.ResponseWriter
	p         *Proxy
	n, header int64
	want      int64 // the body's Content-Length, -1 unknown
	wrote     bool
	finished  bool
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.header = headerSize(w.Header())
		if n, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil && n > 0 {
			w.want = n
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.finished && w.want >= 0 && w.n+int64(len(b)) >= w.want {
		w.n += int64(len(b)) // counted as sent: the request ends first
		w.finish()
		n, err := w.ResponseWriter.Write(b)
		if short := int64(len(b) - n); short > 0 { // counted, not sent
			w.n -= short
			w.p.mu.Lock()
			w.p.c.Bytes -= short
			w.p.mu.Unlock()
		}
		w.Flush() // the whole answer now, not when the handler ends
		return n, err
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// finish ends the request in the proxy's counts, once, with the bytes
// written so far.
func (w *countingWriter) finish() {
	if w.finished {
		return
	}
	w.finished = true
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.inFlight--
	w.p.c.Bytes += w.n
	w.p.c.HeaderBytes += w.header
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// headerSize is the size of a status line and the headers as HTTP/1.1
// writes them (Date and Content-Length included by the server are not
// known here; 64 bytes stand for them).
func headerSize(h http.Header) int64 {
	n := int64(len("HTTP/1.1 200 OK\r\n\r\n") + 64)
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + 2 + len(v) + 2)
		}
	}
	return n
}

var _ io.Writer = (*countingWriter)(nil)

// bufferPool reuses the proxy's copy buffers (httputil.BufferPool).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }
