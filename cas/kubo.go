package cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/boxo/path"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/kubo/client/rpc"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Kubo is a Store on a Kubo daemon, through its RPC API. It computes
// nothing a reader trusts (readers wrap it in Verify). Put sends all blocks
// in one CAR import; Get asks the daemon's own store first and only then,
// within FetchTimeout, the network (bitswap), so a missing block never
// hangs a reader.
type Kubo struct {
	API          *rpc.HttpApi
	Addr         string // the API multiaddr, for messages
	FetchTimeout time.Duration
}

// DefaultFetchTimeout bounds the network fetch of one block.
const DefaultFetchTimeout = 30 * time.Second

// maxBlock bounds a block read from Kubo.
const maxBlock = 2 << 20

// DialKubo connects to the daemon whose RPC API listens at addr (a
// multiaddr such as /ip4/127.0.0.1/tcp/5001) with one keep-alive HTTP
// client, and checks that it answers.
func DialKubo(ctx context.Context, addr string) (*Kubo, error) {
	m, err := ma.NewMultiaddr(strings.TrimSpace(addr))
	if err != nil {
		return nil, fmt.Errorf("cas: kubo: %q is not a multiaddr: %w", addr, err)
	}
	_, host, err := manet.DialArgs(m)
	if err != nil {
		return nil, fmt.Errorf("cas: kubo %s: %w", addr, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 64
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	api, err := rpc.NewURLApiWithClient("http://"+host, &http.Client{Transport: tr})
	if err != nil {
		return nil, fmt.Errorf("cas: kubo %s: %w", addr, err)
	}
	k := &Kubo{API: api, Addr: m.String(), FetchTimeout: DefaultFetchTimeout}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var v struct{ Version string }
	if err := api.Request("version").Exec(cctx, &v); err != nil {
		return nil, k.unreachable(err)
	}
	return k, nil
}

// ErrUnreachable is returned when the daemon does not answer.
var ErrUnreachable = errors.New("kubo daemon not reachable")

func (k *Kubo) unreachable(err error) error {
	return fmt.Errorf("cas: kubo at %s: %w (%v): start it with `ipfs daemon`, or point --api at a running one", k.Addr, ErrUnreachable, err)
}

// kuboErr maps a transport failure to ErrUnreachable.
func (k *Kubo) kuboErr(what string, err error) error {
	var rerr *rpc.Error
	if errors.As(err, &rerr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cas: kubo %s: %s: %w", k.Addr, what, err)
	}
	return fmt.Errorf("cas: kubo: %s: %w", what, k.unreachable(err))
}

func notFoundMsg(err error) bool {
	var rerr *rpc.Error
	return errors.As(err, &rerr) && (strings.Contains(rerr.Message, "not found") || strings.Contains(rerr.Message, "no link named"))
}

func (k *Kubo) blockGet(ctx context.Context, c cid.Cid, offline bool) ([]byte, error) {
	resp, err := k.API.Request("block/get", c.String()).Option("offline", offline).Send(ctx)
	if err != nil {
		return nil, err
	}
	defer resp.Close()
	if resp.Error != nil {
		return nil, resp.Error
	}
	b, err := io.ReadAll(io.LimitReader(resp.Output, maxBlock+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBlock {
		return nil, fmt.Errorf("block over %d bytes", maxBlock)
	}
	return b, nil
}

// Get returns a block the daemon holds, or fetches it from its peers
// within FetchTimeout.
func (k *Kubo) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := k.blockGet(ctx, c, true)
	if err == nil {
		return b, nil
	}
	if !notFoundMsg(err) {
		return nil, k.kuboErr("get "+c.String(), err)
	}
	fctx, cancel := context.WithTimeout(ctx, k.FetchTimeout)
	defer cancel()
	b, err = k.blockGet(fctx, c, false)
	if err == nil {
		return b, nil
	}
	if ctx.Err() == nil && (errors.Is(fctx.Err(), context.DeadlineExceeded) || notFoundMsg(err)) {
		return nil, fmt.Errorf("cas: kubo %s: get %s: %w: the daemon does not hold it and found no peer with it within %s", k.Addr, c, ErrNotFound, k.FetchTimeout)
	}
	return nil, k.kuboErr("get "+c.String(), err)
}

// Has reports whether the daemon holds the block itself.
func (k *Kubo) Has(ctx context.Context, c cid.Cid) (bool, error) {
	err := k.API.Request("block/stat", c.String()).Option("offline", true).Exec(ctx, &struct{ Key string }{})
	if err == nil {
		return true, nil
	}
	if notFoundMsg(err) {
		return false, nil
	}
	return false, k.kuboErr("has "+c.String(), err)
}

// Put sends blks to the daemon as one CARv1 stream (`dag import`), rooted
// at the last block, without pinning.
func (k *Kubo) Put(ctx context.Context, blks []blocks.Block) error {
	if len(blks) == 0 {
		return nil
	}
	car, err := CARv1(ctx, blks[len(blks)-1].Cid(), blks)
	if err != nil {
		return fmt.Errorf("cas: kubo: put: %w", err)
	}
	err = k.API.Request("dag/import").Option("pin-roots", false).Option("stats", false).
		FileBody(bytes.NewReader(car)).Exec(ctx, nil)
	if err != nil {
		return k.kuboErr(fmt.Sprintf("import %d blocks", len(blks)), err)
	}
	return nil
}

// CARv1 writes blks as a CARv1 file with the given root.
func CARv1(ctx context.Context, root cid.Cid, blks []blocks.Block) ([]byte, error) {
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, []cid.Cid{root}, carv2.WriteAsCarV1(true))
	if err != nil {
		return nil, err
	}
	for _, b := range blks {
		if err := w.Put(ctx, b.Cid().KeyString(), b.RawData()); err != nil {
			return nil, err
		}
	}
	if err := w.Finalize(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Pin makes the daemon keep the DAG under head, recursively, and stop
// keeping old's (when old is defined and differs): a pin update, so the
// daemon holds exactly the current log.
func (k *Kubo) Pin(ctx context.Context, old, head cid.Cid) error {
	if old.Defined() && !old.Equals(head) {
		err := k.API.Pin().Update(ctx, path.FromCid(old), path.FromCid(head))
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "not pinned") {
			return k.kuboErr("pin update", err)
		}
	}
	if err := k.API.Pin().Add(ctx, path.FromCid(head)); err != nil {
		return k.kuboErr("pin "+head.String(), err)
	}
	return nil
}
