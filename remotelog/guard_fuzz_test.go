package remotelog

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzGuard: whatever the path, query and Accept header, the guard
// answers without panicking (other than cutting a CAR stream), never
// passes a dups=y CAR request on, and never lets a CAR past its limit.
func FuzzGuard(f *testing.F) {
	f.Add("/ipfs/bafkqaaa", "format=car", "application/vnd.ipld.car; dups=y", 100)
	f.Add("/ipfs/bafkqaaa/a/b", "car-dups=n", "application/vnd.ipld.car;order=dfs;dups=n, application/vnd.ipld.raw;q=0.5", 5000)
	f.Add("/ipns/k51", "format=raw", "*/*", 0)
	f.Add("/ipfs/"+strings.Repeat("x/", 40), "", "", 10)
	f.Fuzz(func(t *testing.T, path, query, accept string, size int) {
		if size < 0 || size > 1<<16 {
			return
		}
		const limit = 1000
		passed := false
		gw := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			passed = true
			if car, dups := carRequest(r); car && dups == "y" {
				t.Fatalf("a dups=y CAR request passed: %q %q", r.URL.RawQuery, r.Header.Get("Accept"))
			}
			rw.Write(make([]byte, size))
		})
		req := httptest.NewRequest(http.MethodGet, "http://x/", nil)
		req.URL.Path, req.URL.RawQuery = path, query
		if _, err := url.ParseQuery(query); err != nil {
			req.URL.RawQuery = ""
		}
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		func() {
			defer func() {
				if v := recover(); v != nil && v != http.ErrAbortHandler {
					t.Fatalf("panic: %v", v)
				}
			}()
			guard(gw, limit).ServeHTTP(rec, req)
		}()
		car, _ := carRequest(req)
		if car && passed && rec.Body.Len() > limit {
			t.Fatalf("a CAR of %d bytes passed the %d-byte limit", rec.Body.Len(), limit)
		}
	})
}
