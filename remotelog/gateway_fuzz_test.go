package remotelog_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"rlog/remotelog"
)

// FuzzGatewayAnswers reads a log through a gateway that answers every
// record request with one set of bytes and status, and every block request
// with another: whatever it says, the reader returns (no panic, no hang),
// and it delivers nothing it could not verify.
func FuzzGatewayAnswers(f *testing.F) {
	w := newWorld(f, small(f))
	w.appendN(f, 0, 25, 100)
	res := w.publish(f)
	rec, err := w.names.Resolve(context.Background(), w.w.Name())
	if err != nil {
		f.Fatal(err)
	}
	head, err := w.store.Get(context.Background(), res.Head)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec, uint16(200), head, uint16(200))
	f.Add(rec, uint16(200), []byte("not a page"), uint16(200))
	f.Add([]byte{}, uint16(404), []byte{}, uint16(404))
	f.Add([]byte("\x0a\x00"), uint16(500), head, uint16(302))
	f.Fuzz(func(t *testing.T, record []byte, recordStatus uint16, block []byte, blockStatus uint16) {
		status := func(s uint16) int { return 100 + int(s)%500 }
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			body, code := block, status(blockStatus)
			if strings.HasPrefix(r.URL.Path, "/ipns/") {
				body, code = record, status(recordStatus)
			}
			if code < 200 || (code >= 300 && code < 400) {
				code = 200 + code%100 // informational and redirects without a Location are not answers
			}
			rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
			rw.WriteHeader(code)
			rw.Write(body)
		}))
		defer srv.Close()
		src, err := remotelog.OpenSource(context.Background(), srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a safety net, not the assertion
		defer cancel()
		_, _, err = remotelog.CatchUp(ctx, src, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now, SpoolDir: t.TempDir()}, func(m remotelog.Message) error {
			// Only the real log verifies: anything delivered is its own.
			if !strings.HasPrefix(string(m.Body), "message ") {
				t.Errorf("delivered a message that is not the log's: %q", m.Body)
			}
			return nil
		})
		if ctx.Err() != nil {
			t.Fatalf("the reader did not return within 30 s: %v", err)
		}
	})
}
