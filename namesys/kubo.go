package namesys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/kubo/client/rpc"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Kubo stores and fetches signed records through a Kubo daemon. Publish
// sends a record rlog signed (`name put`); the key never goes to Kubo.
// Resolve fetches the signed record itself, never only the path it names:
// through `routing get` on an online daemon, else from the daemon's
// gateway with ?format=ipns-record; the caller verifies it.
type Kubo struct {
	API     *rpc.HttpApi
	Addr    string
	Gateway string // http://host:port of the daemon's gateway; found from its config when empty
	HTTP    *http.Client
}

func (k *Kubo) Publish(ctx context.Context, name ipns.Name, raw []byte) error {
	err := k.API.Request("name/put", name.String()).Option("allow-offline", true).
		FileBody(bytes.NewReader(raw)).Exec(ctx, nil)
	if err != nil {
		return fmt.Errorf("namesys: kubo %s: put record of %s: %w", k.Addr, name, err)
	}
	return nil
}

func (k *Kubo) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	raw, rerr := k.routingGet(ctx, name)
	if rerr == nil {
		return raw, nil
	}
	raw, gerr := k.gatewayGet(ctx, name)
	if gerr == nil {
		return raw, nil
	}
	if errors.Is(rerr, ErrNotFound) || errors.Is(gerr, ErrNotFound) {
		return nil, fmt.Errorf("namesys: kubo %s: resolve %s: %w", k.Addr, name, ErrNotFound)
	}
	return nil, fmt.Errorf("namesys: kubo %s: resolve %s: no signed record: routing get: %v; gateway: %w", k.Addr, name, rerr, gerr)
}

func (k *Kubo) routingGet(ctx context.Context, name ipns.Name) ([]byte, error) {
	raw, err := k.API.Routing().Get(ctx, "/ipns/"+name.String())
	if err != nil && strings.Contains(err.Error(), "not found") {
		return nil, ErrNotFound
	}
	return raw, err
}

func (k *Kubo) gatewayGet(ctx context.Context, name ipns.Name) ([]byte, error) {
	gw := k.Gateway
	if gw == "" {
		var err error
		if gw, err = k.findGateway(ctx); err != nil {
			return nil, err
		}
	}
	return (&Gateway{URL: gw, HTTP: k.HTTP}).Resolve(ctx, name)
}

// findGateway reads the daemon's gateway address from its config.
func (k *Kubo) findGateway(ctx context.Context) (string, error) {
	var out struct{ Value any }
	if err := k.API.Request("config", "Addresses.Gateway").Exec(ctx, &out); err != nil {
		return "", fmt.Errorf("read gateway address: %w", err)
	}
	var addrs []string
	switch v := out.Value.(type) {
	case string:
		addrs = []string{v}
	case []any:
		for _, a := range v {
			if s, ok := a.(string); ok {
				addrs = append(addrs, s)
			}
		}
	}
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		if _, host, err := manet.DialArgs(m); err == nil {
			return "http://" + host, nil
		}
	}
	return "", fmt.Errorf("the daemon has no usable gateway address (%v)", addrs)
}
