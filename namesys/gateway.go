package namesys

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
)

// Gateway fetches signed records from an IPFS trustless gateway
// (GET /ipns/<name>?format=ipns-record). The gateway is not trusted: the
// caller verifies what it returns (Resolve in this package does).
type Gateway struct {
	URL  string // http(s)://host[:port], no trailing slash
	HTTP *http.Client
	// FetchTimeout bounds one resolve, answer and body; default
	// DefaultFetchTimeout. A gateway that never answers, or trickles, is
	// an error after it.
	FetchTimeout time.Duration
}

// DefaultFetchTimeout bounds a record fetch from a gateway.
const DefaultFetchTimeout = 30 * time.Second

func (g *Gateway) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	base := strings.TrimRight(g.URL, "/")
	timeout := g.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, err := g.resolve(ctx, base, name)
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("namesys: gateway %s: resolve %s: no answer within %s: %w", base, name, timeout, ctx.Err())
	}
	return b, err
}

func (g *Gateway) resolve(ctx context.Context, base string, name ipns.Name) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ipns/"+name.String()+"?format=ipns-record", nil)
	if err != nil {
		return nil, fmt.Errorf("namesys: gateway %s: %w", base, err)
	}
	req.Header.Set("Accept", "application/vnd.ipfs.ipns-record")
	hc := g.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("namesys: gateway %s: resolve %s: %w", base, name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(ipns.MaxRecordSize)+1))
	if err != nil {
		return nil, fmt.Errorf("namesys: gateway %s: resolve %s: %w", base, name, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound,
		resp.StatusCode == http.StatusInternalServerError && bytes.Contains(b, []byte("not found")):
		return nil, fmt.Errorf("namesys: gateway %s: resolve %s: %w", base, name, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("namesys: gateway %s: resolve %s: %s: %s", base, name, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}
