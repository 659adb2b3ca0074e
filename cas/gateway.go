package cas

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Gateway reads blocks from an IPFS trustless gateway (Kubo's, `rlog
// serve`, or a public one) with GET /ipfs/<cid>?format=raw. It trusts
// nothing it gets: wrap it in Verify. It is read-only.
type Gateway struct {
	URL          string // http(s)://host[:port]
	HTTP         *http.Client
	FetchTimeout time.Duration // per block; default DefaultFetchTimeout
}

func (g *Gateway) base() string { return strings.TrimRight(g.URL, "/") }

func (g *Gateway) do(ctx context.Context, method string, c cid.Cid) (*http.Response, error) {
	timeout := g.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := http.NewRequestWithContext(ctx, method, g.base()+"/ipfs/"+c.String()+"?format=raw", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.ipld.raw")
	hc := g.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if timedOut {
			return nil, fmt.Errorf("cas: gateway %s: %s %s: %w: no answer within %s", g.base(), method, c, ErrNotFound, timeout)
		}
		return nil, fmt.Errorf("cas: gateway %s: %s %s: %w", g.base(), method, c, err)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error { defer c.cancel(); return c.ReadCloser.Close() }

func (g *Gateway) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	resp, err := g.do(ctx, http.MethodGet, c)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGatewayTimeout || resp.StatusCode == http.StatusPreconditionFailed:
		return nil, fmt.Errorf("cas: gateway %s: get %s: %w (%s)", g.base(), c, ErrNotFound, resp.Status)
	case resp.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("cas: gateway %s: get %s: %s: %s", g.base(), c, resp.Status, strings.TrimSpace(string(msg)))
	}
	b, err := readBody(resp, maxBlock)
	if err != nil {
		return nil, fmt.Errorf("cas: gateway %s: get %s: %w after %d bytes: %w", g.base(), c, ErrCut, len(b), err)
	}
	return b, nil
}

// readBody reads a response body of at most limit bytes. When the
// response says its length, the body is read into a buffer of exactly that
// size: the block it holds is kept by whoever decodes it (a page's
// payloads are slices of it), so it carries no spare capacity, and reading
// it leaves no garbage of growing buffers.
func readBody(resp *http.Response, limit int) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= int64(limit) {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil // the transport reads no further than the length
	} else if n > int64(limit) {
		return nil, fmt.Errorf("block over %d bytes", limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("block over %d bytes", limit)
	}
	return b, nil
}

func (g *Gateway) Has(ctx context.Context, c cid.Cid) (bool, error) {
	resp, err := g.do(ctx, http.MethodHead, c)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

func (g *Gateway) Put(context.Context, []blocks.Block) error {
	return fmt.Errorf("cas: gateway %s: put: %w", g.base(), ErrReadOnly)
}
