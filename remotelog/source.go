package remotelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/boxo/ipns"

	"rlog/cas"
	"rlog/namesys"
)

// SourceCloser is a Source to release after use.
type SourceCloser interface {
	Source
	io.Closer
}

// opener builds a source from an argument it recognises.
type opener struct {
	scheme string // prefix before ':' that selects it, or "" for paths
	help   string
	open   func(ctx context.Context, arg string) (SourceCloser, error)
}

// sources is the registry of where a reader can read. Later backends
// (Kubo, gateways, CAR files) register here; it is the one way to build one.
var sources = []opener{
	{scheme: "repo", help: "repo:DIR or a directory: another rlog repo on this machine, read-only", open: func(ctx context.Context, arg string) (SourceCloser, error) {
		return openRepoSource(ctx, strings.TrimPrefix(arg, "repo:"))
	}},
	{scheme: "kubo", help: "kubo:MULTIADDR: a Kubo daemon's RPC API, e.g. kubo:/ip4/127.0.0.1/tcp/5001", open: func(ctx context.Context, arg string) (SourceCloser, error) {
		return OpenKubo(ctx, strings.TrimPrefix(arg, "kubo:"))
	}},
	{scheme: "car", help: "car:FILE or a .car file: a backup written by `rlog backup`, or any CAR of a log's blocks (`ipfs dag export HEAD`)", open: func(ctx context.Context, arg string) (SourceCloser, error) {
		return openCAR(ctx, strings.TrimPrefix(arg, "car:"))
	}},
	{scheme: "http", help: "http://HOST[:PORT] or https://HOST: an IPFS trustless gateway (Kubo's, `rlog serve`, a public one)", open: openGateway},
	{scheme: "https", open: openGateway},
}

// SourceHelp lists the accepted source forms, one per line.
func SourceHelp() string {
	var b strings.Builder
	for _, o := range sources {
		if o.help != "" {
			fmt.Fprintf(&b, "  %s\n", o.help)
		}
	}
	return b.String()
}

// OpenSource opens a reader's source from a URL-like argument, one of:
//
//	/path/to/repo          another rlog repo's folder, read-only
//	log.car, car:FILE      a backup written by Backup
//	kubo:MULTIADDR         a Kubo daemon's RPC API (kubo: alone: $IPFS_PATH/api)
//	http(s)://HOST[:PORT]  any IPFS trustless gateway: Kubo's, rlog serve, a public one
//
// Nothing a source returns is trusted: readers verify every block and record.
func OpenSource(ctx context.Context, arg string) (SourceCloser, error) {
	if arg == "" {
		return nil, errors.New("remotelog: empty source")
	}
	scheme, _, hasScheme := strings.Cut(arg, ":")
	for _, o := range sources {
		if hasScheme && scheme == o.scheme {
			return o.open(ctx, arg)
		}
	}
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		return openRepoSource(ctx, arg)
	} else if err == nil && strings.HasSuffix(arg, ".car") {
		return openCAR(ctx, arg)
	}
	return nil, fmt.Errorf("remotelog: source %q: %w; sources are:\n%s", arg, ErrUnknownSource, SourceHelp())
}

// ErrUnknownSource is OpenSource's error for an argument that is none of the
// forms it takes.
var ErrUnknownSource = errors.New("not a directory and no known scheme")

func openRepoSource(_ context.Context, dir string) (SourceCloser, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r, err := OpenReadOnly(abs)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// KuboBackend is a Kubo daemon as blocks, names and source.
type KuboBackend struct {
	*cas.Kubo
	Names *namesys.Kubo
}

func (k *KuboBackend) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	return k.Names.Resolve(ctx, name)
}

// Backend is the daemon as a writer's backend.
func (k *KuboBackend) Backend() *Backend { return &Backend{Store: k.Kubo, Names: k.Names} }

// Close releases idle connections.
func (k *KuboBackend) Close() error { return nil }

// OpenKubo connects to the Kubo daemon whose RPC API is at addr.
func OpenKubo(ctx context.Context, addr string) (SourceCloser, error) {
	if addr == "" {
		return nil, errors.New("remotelog: kubo source needs the daemon's API multiaddr, e.g. kubo:/ip4/127.0.0.1/tcp/5001")
	}
	k, err := cas.DialKubo(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &KuboBackend{Kubo: k, Names: &namesys.Kubo{API: k.API, Addr: k.Addr}}, nil
}

// GatewaySource reads a log from a trustless gateway: blocks with
// ?format=raw, records with ?format=ipns-record, all verified by the reader.
type GatewaySource struct {
	*cas.Gateway
	Names *namesys.Gateway
}

func (g *GatewaySource) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	return g.Names.Resolve(ctx, name)
}

func (g *GatewaySource) Close() error {
	g.HTTP.CloseIdleConnections()
	return nil
}

func openGateway(_ context.Context, url string) (SourceCloser, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return GatewaySourceWith(url, &http.Client{Transport: tr}), nil
}

// GatewaySourceWith reads from the gateway at url with the given client.
func GatewaySourceWith(url string, hc *http.Client) *GatewaySource {
	url = strings.TrimRight(url, "/")
	return &GatewaySource{Gateway: &cas.Gateway{URL: url, HTTP: hc}, Names: &namesys.Gateway{URL: url, HTTP: hc}}
}
