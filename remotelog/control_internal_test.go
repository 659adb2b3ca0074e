package remotelog

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// The control handler serves its own user only; a caller whose
// credentials are another user's, or unknown, is refused before anything
// is read.
func TestControlRefusesOtherUsers(t *testing.T) {
	called := false
	h := checkPeer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	for _, c := range []struct {
		name string
		ctx  context.Context
		want int
	}{
		{"owner", context.WithValue(context.Background(), peerKey{}, peer{uid: os.Getuid()}), http.StatusOK},
		{"another user", context.WithValue(context.Background(), peerKey{}, peer{uid: os.Getuid() + 1}), http.StatusForbidden},
		{"root for a user", context.WithValue(context.Background(), peerKey{}, peer{uid: 0}), map[bool]int{true: http.StatusOK, false: http.StatusForbidden}[os.Getuid() == 0]},
		{"unreadable credentials", context.WithValue(context.Background(), peerKey{}, peer{err: errors.New("no")}), http.StatusForbidden},
		{"no credentials", context.Background(), http.StatusForbidden},
	} {
		called = false
		req := httptest.NewRequestWithContext(c.ctx, http.MethodPost, "/append", strings.NewReader(`{"bodies":["aW5qZWN0ZWQ="]}`))
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, req)
		if rw.Code != c.want || called != (c.want == http.StatusOK) {
			t.Errorf("%s: status %d, served %v; want %d", c.name, rw.Code, called, c.want)
		}
		if c.want != http.StatusOK && !strings.Contains(rw.Body.String(), `"error":"remotelog: control socket: `) {
			t.Errorf("%s: body %q does not say why", c.name, rw.Body)
		}
	}
	if !allowedPeer(os.Getuid()) || allowedPeer(os.Getuid()+1) {
		t.Error("allowedPeer")
	}
}
