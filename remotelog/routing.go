package remotelog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/namesys"
)

// The Delegated Routing V1 HTTP API, as much of it as a gateway that holds
// its logs needs for IPFS clients (Helia, verified-fetch) to read them with
// this server as their only router: IPNS records, and this server as the
// provider of its blocks.

// routingIPNS answers Delegated Routing V1's GET /routing/v1/ipns/{name}
// with the name's signed record, so that IPFS clients (Helia,
// verified-fetch) resolve ipns://NAME with this server as their router.
func (s *Server) routingIPNS(rw http.ResponseWriter, r *http.Request) {
	name, err := ipns.NameFromString(r.PathValue("name"))
	if err != nil {
		http.Error(rw, fmt.Sprintf("not an IPNS name: %v", err), http.StatusBadRequest)
		return
	}
	raw, err := s.repo.Names().Resolve(r.Context(), name)
	if errors.Is(err, namesys.ErrNotFound) {
		http.Error(rw, fmt.Sprintf("no record for %s here", name), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	maxAge := time.Minute
	if rec, err := ipns.UnmarshalRecord(raw); err == nil {
		if ttl, err := rec.TTL(); err == nil && ttl > 0 {
			maxAge = ttl
		}
	}
	rw.Header().Set("Content-Type", "application/vnd.ipfs.ipns-record")
	rw.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	rw.Header().Set("Vary", "Accept")
	rw.Write(raw)
}

// routingProviders answers GET /routing/v1/providers/{cid}: for a block
// held here, this server itself, as a trustless gateway at the address the
// client reached it by; 404 (no providers) otherwise.
func (s *Server) routingProviders(has func(context.Context, cid.Cid) (bool, error)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		c, err := cid.Decode(r.PathValue("cid"))
		if err != nil {
			http.Error(rw, fmt.Sprintf("not a CID: %v", err), http.StatusBadRequest)
			return
		}
		ok, err := has(r.Context(), c)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		addr, aerr := selfAddr(r)
		if !ok || aerr != nil {
			http.Error(rw, "no providers here", http.StatusNotFound)
			return
		}
		p := provider{Schema: "peer", ID: s.repo.Name().Peer().String(), Addrs: []string{addr}, Protocols: []string{"transport-ipfs-gateway-http"}}
		rw.Header().Set("Cache-Control", "public, max-age=300")
		rw.Header().Set("Vary", "Accept")
		if accepts(r, "application/x-ndjson") {
			rw.Header().Set("Content-Type", "application/x-ndjson")
			json.NewEncoder(rw).Encode(p)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(map[string][]provider{"Providers": {p}})
	}
}

type provider struct {
	Schema    string
	ID        string
	Addrs     []string
	Protocols []string
}

// selfAddr is this server's multiaddr as the request reached it:
// /ip4|ip6|dns/HOST/tcp/PORT/http, or /tls/http behind TLS.
func selfAddr(r *http.Request) (string, error) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		return "", err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", err
	}
	proto := "dns"
	if ip := net.ParseIP(host); ip != nil {
		proto = "ip4"
		if ip.To4() == nil {
			proto = "ip6"
		}
	}
	scheme := "/http"
	if r.TLS != nil {
		scheme = "/tls/http"
	}
	return "/" + proto + "/" + host + "/tcp/" + port + scheme, nil
}

func accepts(r *http.Request, mediaType string) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, mediaType) {
			return true
		}
	}
	return false
}
