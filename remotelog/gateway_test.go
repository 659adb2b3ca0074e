package remotelog_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/cas"
	"rlog/namesys"
	"rlog/remotelog"
)

// gateway is a trustless gateway over a world's stores, on a real HTTP
// server on 127.0.0.1, that can be told to lie.
type gateway struct {
	w         *world
	wrongCID  cid.Cid // serve other bytes for this block
	recordFor func(name ipns.Name) []byte
}

func (g *gateway) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/ipfs/") && r.URL.Query().Get("format") == "raw":
		c, err := cid.Decode(strings.TrimPrefix(r.URL.Path, "/ipfs/"))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		b, err := g.w.store.Get(r.Context(), c)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusNotFound)
			return
		}
		if c.Equals(g.wrongCID) {
			b = append([]byte("lie"), b...)
		}
		rw.Header().Set("Content-Type", "application/vnd.ipld.raw")
		rw.Write(b)
	case strings.HasPrefix(r.URL.Path, "/ipns/") && r.URL.Query().Get("format") == "ipns-record":
		name, err := ipns.NameFromString(strings.TrimPrefix(r.URL.Path, "/ipns/"))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		var raw []byte
		if g.recordFor != nil {
			raw = g.recordFor(name)
		} else {
			raw, err = g.w.names.Resolve(r.Context(), name)
			if err != nil {
				http.Error(rw, err.Error(), http.StatusNotFound)
				return
			}
		}
		rw.Header().Set("Content-Type", "application/vnd.ipfs.ipns-record")
		rw.Write(raw)
	default:
		http.Error(rw, "not a trustless request", http.StatusBadRequest)
	}
}

func TestGatewaySource(t *testing.T) {
	w := newWorld(t, small(t))
	w.appendN(t, 0, 45, 0)
	first := w.publish(t)
	gw := &gateway{w: w}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	ctx := context.Background()
	src, err := remotelog.OpenSource(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, cur, err := readAll(t, src, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil || len(got) != 45 {
		t.Fatalf("read through the gateway: %d messages, %v", len(got), err)
	}

	// A wrong block is an error, never data.
	gw.wrongCID = first.Head
	_, _, err = readAll(t, src, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if !errors.Is(err, cas.ErrHashMismatch) {
		t.Fatalf("wrong block: got %v", err)
	}
	gw.wrongCID = cid.Undef

	// An old record (a gateway replaying the past) is refused.
	old, _ := w.names.Resolve(ctx, w.w.Name())
	w.appendN(t, 45, 5, 0)
	w.publish(t)
	gw.recordFor = func(ipns.Name) []byte { return old }
	_, _, err = readAll(t, src, w.w.Name(), remotelog.Cursor{Seq: cur.Seq, ID: cur.ID, RecordSeq: 2}, remotelog.ReadOptions{Now: w.clock.Now})
	if !errors.Is(err, remotelog.ErrRollback) {
		t.Fatalf("old record: got %v", err)
	}

	// A record for another name (signed by another key) is refused.
	_, sk, _ := ed25519.GenerateKey(nil)
	other, _ := crypto.UnmarshalEd25519PrivateKey(sk)
	forged, _ := namesys.NewRecord(other, first.Head, 99, time.Now().Add(time.Hour), time.Minute)
	gw.recordFor = func(ipns.Name) []byte { return forged }
	n := 0
	_, _, err = remotelog.CatchUp(ctx, src, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}, func(remotelog.Message) error { n++; return nil })
	if !errors.Is(err, namesys.ErrInvalid) || n != 0 {
		t.Fatalf("record for another name: got %v after %d messages", err, n)
	}
	gw.recordFor = nil

	// And it reads on from the cursor once the gateway behaves.
	rest, _, err := readAll(t, src, w.w.Name(), cur, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil || len(rest) != 5 || rest[0].Seq != 46 {
		t.Fatalf("read on: %d messages, %v", len(rest), err)
	}
}
