package remotelog_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzControlRequest posts any body to the owner's control handler: it
// answers every request (an error for what it cannot take) and never
// panics; what it takes is appended whole or not at all.
func FuzzControlRequest(f *testing.F) {
	_, w, srv, _ := servedRepo(f)
	h := srv.Control()
	f.Add("/append", []byte(`{"group":"AAEC","bodies":["aGVsbG8="]}`))
	f.Add("/append", []byte(`{"group":"AAEC","file":"/nonexistent"}`))
	f.Add("/append", []byte(`{"group":"AAEC","file":"/dev/zero"}`))
	f.Add("/append", []byte(`{"bodies":[1,2,3]}`))
	f.Add("/append", []byte(`{`))
	f.Add("/publish", []byte(`{}`))
	f.Add("/status", []byte{})
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		if len(path) == 0 || path[0] != '/' {
			path = "/" + path
		}
		req, err := http.NewRequest(http.MethodPost, "http://rlog"+path, bytes.NewReader(body))
		if err != nil {
			return // not a URL a client could send
		}
		before := w.Len()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			return
		}
		if after := w.Len(); after != before && path == "/append" {
			t.Fatalf("a refused append (%d) changed the log from %d to %d messages", rec.Code, before, after)
		}
	})
}
