package cas_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"rlog/cas"
	"rlog/cas/castest"
)

// kuboAPI is the API of a real Kubo daemon started by the test setup
// (.ci/run); without one, the Kubo tests skip.
func kuboAPI(t *testing.T) string {
	api := os.Getenv("RLOG_KUBO_API")
	if api == "" && os.Getenv("CI") == "true" {
		t.Fatal("RLOG_KUBO_API is not set in CI: .ci/run starts the daemon the Kubo tests need")
	}
	if api == "" {
		t.Skip("RLOG_KUBO_API is not set: no Kubo daemon to test against (see README, Kubo tests)")
	}
	return api
}

func TestKuboStore(t *testing.T) {
	k, err := cas.DialKubo(context.Background(), kuboAPI(t))
	if err != nil {
		t.Fatal(err)
	}
	k.FetchTimeout = 2 * time.Second // offline daemon: answers at once anyway
	castest.Run(t, k)
}

func TestKuboMissingBlockDoesNotHang(t *testing.T) {
	k, err := cas.DialKubo(context.Background(), kuboAPI(t))
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := cas.PayloadBlocks([]byte("never stored " + time.Now().String()))
	_, err = k.Get(context.Background(), c)
	if !errors.Is(err, cas.ErrNotFound) || !strings.Contains(err.Error(), c.String()) {
		t.Fatalf("got %v, want ErrNotFound naming the block", err)
	}
}

func TestKuboUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "/ip4/127.0.0.1/tcp/" + strings.Split(l.Addr().String(), ":")[1]
	l.Close() // nothing listens there now
	_, err = cas.DialKubo(context.Background(), addr)
	if !errors.Is(err, cas.ErrUnreachable) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "ipfs daemon") {
		t.Fatalf("got %v, want ErrUnreachable naming %s and what to start", err, addr)
	}
}
