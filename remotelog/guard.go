package remotelog

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// MaxCARBytes bounds one CAR response of the gateway. A log's skip links
// reach each page by many paths, so a walk that sends every path (dups=y)
// is refused outright; a walk that sends each block once (dups=n, the
// default) is as long as the log, and a whole large log in one response
// would cost seconds of CPU: past this many bytes the stream is cut (the
// client sees a truncated CAR, never a short one that looks whole). A
// reader wanting a whole log reads it page by page (?format=raw), as rlog
// does, or from `rlog backup`.
const MaxCARBytes = 64 << 20

// maxPathSegments bounds a gateway path: each segment is a block to load
// and decode, and rlog's readers ask by CID alone.
const maxPathSegments = 32

// errDupsRefused answers a CAR request for dups=y.
var errDupsRefused = errors.New("CAR with dups=y is not served here: the log's skip links reach each page by exponentially many paths; ask for dups=n (each block once), or raw blocks with ?format=raw")

// guard wraps the trustless gateway so that no request can pin the
// server: it refuses CAR requests with dups=y (406, as the trustless
// gateway spec allows for an unsupported variant) and paths of more than
// maxPathSegments segments (400), and cuts any CAR response at maxCAR bytes.
func guard(gw http.Handler, maxCAR int64) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if n := strings.Count(strings.Trim(r.URL.Path, "/"), "/"); n > maxPathSegments+1 {
			http.Error(rw, fmt.Sprintf("path of %d segments: this gateway follows at most %d", n-1, maxPathSegments), http.StatusBadRequest)
			return
		}
		car, dups := carRequest(r)
		if !car {
			gw.ServeHTTP(rw, r)
			return
		}
		if dups == "y" {
			http.Error(rw, errDupsRefused.Error(), http.StatusNotAcceptable)
			return
		}
		cw := &carWriter{ResponseWriter: rw, left: maxCAR}
		gw.ServeHTTP(cw, r)
		if cw.cut {
			// The status and headers are sent: end the stream without
			// its last chunk, so the client sees a truncated response.
			panic(http.ErrAbortHandler)
		}
	})
}

// carRequest reports whether r asks for a CAR, and the dups it asks for
// (the car-dups query parameter wins over the Accept header, as in the
// spec).
func carRequest(r *http.Request) (car bool, dups string) {
	q := r.URL.Query()
	car = q.Get("format") == "car"
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "application/vnd.ipld.car" {
			continue
		}
		car = true
		if d := params["dups"]; d != "" && dups == "" {
			dups = d
		}
	}
	if d := q.Get("car-dups"); d != "" {
		dups = d
	}
	return car, dups
}

// carWriter passes at most left bytes of a CAR on, then fails every
// write; and it keeps the gateway from appending an error text to a CAR
// it could not finish (boxo does, once it has set X-Stream-Error): the
// stream is cut instead, which every CAR reader sees as truncated.
type carWriter struct {
	http.ResponseWriter
	left int64
	cut  bool
}

var errCut = errors.New("remotelog: serve: CAR response cut (over its size limit, or the walk failed)")

func (w *carWriter) Write(b []byte) (int, error) {
	if w.cut || w.Header().Get("X-Stream-Error") != "" {
		w.cut = true
		return 0, errCut
	}
	if int64(len(b)) > w.left {
		n, _ := w.ResponseWriter.Write(b[:w.left])
		w.left, w.cut = 0, true
		return n, errCut
	}
	n, err := w.ResponseWriter.Write(b)
	w.left -= int64(n)
	return n, err
}

func (w *carWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *carWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// corsHeaders are Kubo's gateway's CORS headers (boxo's defaults), with
// the headers a reader of this server looks at exposed too.
var corsHeaders = map[string]string{
	"Access-Control-Allow-Origin":   "*",
	"Access-Control-Allow-Methods":  "GET, HEAD, OPTIONS",
	"Access-Control-Allow-Headers":  "Content-Type, Range, User-Agent, X-Requested-With",
	"Access-Control-Expose-Headers": "Content-Length, Content-Range, Etag, Ipfs-Uri, X-Chunked-Output, X-Ipfs-Path, X-Ipfs-Roots, X-Stream-Error, X-Stream-Output",
}

// withCORS lets pages of any origin read everything served, as Kubo's
// gateway does, and answers their preflight requests.
func withCORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		for k, v := range corsHeaders {
			rw.Header().Set(k, v)
		}
		if r.Method == http.MethodOptions {
			rw.Header().Set("Access-Control-Max-Age", "86400")
			rw.WriteHeader(http.StatusOK)
			return
		}
		h.ServeHTTP(rw, r)
	})
}
