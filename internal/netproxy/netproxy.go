// Package netproxy is an HTTP reverse proxy that measures what a reader
// costs the network: requests, response bytes and sequential rounds, with
// an optional added round trip per request. Tests and benchmarks put it
// between a reader and a gateway (`rlog serve`, Kubo's gateway) to count
// from the outside what the reader says about itself.
//
// A round is a wave of requests as the network sees it: a round starts when
// a request arrives while no other request is in flight, and lasts until
// none is. Requests that overlap in time belong to one round; a reader that
// waits for an answer before asking again makes a new round per request.
//
// The added round trip (RTT) delays each response by RTT before it is
// forwarded, the way a link with that latency delays the first byte.
// Later issues extend Options (cut responses, stalls, restarts).
package netproxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// Options shape the proxied link.
type Options struct {
	// RTT is added to every request before it is forwarded.
	RTT time.Duration
}

// Counts is what the proxy saw.
type Counts struct {
	Requests int   // requests forwarded
	Rounds   int   // sequential waves of requests
	Bytes    int64 // response body bytes sent to the client
	// HeaderBytes approximates the response status lines and headers.
	HeaderBytes int64
}

// Proxy forwards to one target URL and counts.
type Proxy struct {
	URL string // where clients connect: http://127.0.0.1:PORT

	opts     Options
	srv      *httptest.Server
	mu       sync.Mutex
	c        Counts
	inFlight int
	paths    map[string]int
}

// Start serves a proxy to target on a loopback port until Close.
func Start(target string, opts Options) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &Proxy{opts: opts, paths: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	rp.Transport = tr
	p.srv = httptest.NewServer(p.handler(rp))
	p.URL = p.srv.URL
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

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
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.inFlight--
			p.mu.Unlock()
		}()
		if p.opts.RTT > 0 && !wait(r.Context(), p.opts.RTT) {
			return
		}
		cw := &countingWriter{ResponseWriter: rw}
		next.ServeHTTP(cw, r)
		p.mu.Lock()
		p.c.Bytes += cw.n
		p.c.HeaderBytes += cw.header
		p.mu.Unlock()
	})
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

type countingWriter struct {
	http.ResponseWriter
	n, header int64
	wrote     bool
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.header = headerSize(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
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
