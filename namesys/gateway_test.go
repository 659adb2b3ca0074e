package namesys_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"rlog/namesys"
)

// A gateway that accepts and never answers, or answers and never sends
// the body, is an error once the fetch timeout has passed, not a hang.
func TestGatewaySilentIsAnError(t *testing.T) {
	_, name := key(t, 9)
	for _, tc := range []struct {
		what    string
		handler http.HandlerFunc
	}{
		{"no answer", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{"headers, then nothing", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte{0x0a})
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			g := &namesys.Gateway{URL: srv.URL, FetchTimeout: 50 * time.Millisecond}
			_, err := g.Resolve(context.Background(), name)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 50ms") {
				t.Fatalf("err %v, want no answer within 50ms", err)
			}
		})
	}
}
