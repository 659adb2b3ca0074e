package cas_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"rlog/cas"
)

// endless is a body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// A gateway that is silent, trickles, sends an endless body or redirects
// in a loop gets an error, bounded in time and bytes; never a hang, never
// data.
func TestGatewayHostileAnswers(t *testing.T) {
	c, _, err := cas.PayloadBlocks([]byte("a block"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what    string
		handler http.HandlerFunc
		want    string
	}{
		{"silent", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "no answer within"},
		{"headers, then a trickle that stops", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, "deadline exceeded"},
		{"endless body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			buf := make([]byte, 64<<10)
			for r.Context().Err() == nil {
				endless{}.Read(buf)
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}, "block over"},
		{"redirect loop", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}, "redirects"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			g := &cas.Gateway{URL: srv.URL, HTTP: srv.Client(), FetchTimeout: 200 * time.Millisecond}
			b, err := g.Get(context.Background(), c)
			if err == nil || b != nil {
				t.Fatalf("got %d bytes, %v", len(b), err)
			}
			if !strings.Contains(err.Error(), tc.want) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
