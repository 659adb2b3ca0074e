package remotelog

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/gateway"
	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p/core/routing"

	"rlog/mvds"
	"rlog/namesys"
)

// Server serves a repo it owns. Its Gateway is a trustless IPFS gateway
// (raw blocks, CAR responses with dag-scope, IPNS records, with the caching
// headers of the gateway conventions: immutable for /ipfs/, the record's
// TTL for /ipns/) plus /rlog/v1/events, a server-sent event stream of new
// heads, Delegated Routing V1 (/routing/v1/ipns, /routing/v1/providers)
// and a web page that reads logs at /. Its Control handler (served on a
// unix socket in the repo) lets other rlog processes append and publish
// through the owner.
type Server struct {
	repo *Repo
	w    *Writer
	now  func() time.Time

	mu   sync.Mutex // serialises appends and publishes
	subs subscribers
	eph  fanout[EphemeralEvent] // followers of the node's ephemeral messages

	closeOnce sync.Once
	closed    chan struct{} // closed by CloseStreams

	// OnAppend, when set, hears every append made through Control (MVDS
	// sync sends them to peers).
	OnAppend func([]Appended)
	// Status, when set, answers GET /status on Control.
	Status func() any
	// MaxCARBytes bounds one CAR response of Gateway; default MaxCARBytes.
	MaxCARBytes int64
	// Ephemeral says the node behind the server syncs over MVDS, so that
	// /rlog/v1/ephemeral has ephemeral messages to stream; without it that
	// path answers 404, and a follower does not wait for any.
	Ephemeral bool
}

// NewServer serves repo with its writer w (both owned by the caller).
func NewServer(repo *Repo, w *Writer, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	return &Server{repo: repo, w: w, now: now, closed: make(chan struct{})}
}

// CloseStreams ends every event stream at once, and any opened after. An
// event stream never goes idle, so a graceful shutdown would wait for it:
// give CloseStreams to http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closed) }) }

// Gateway is the public handler: trustless gateway, Delegated Routing V1
// for IPNS records, the event stream and the web page at /, all open to
// pages of any origin (CORS). No request can pin the server: see guard.
func (s *Server) Gateway() (http.Handler, error) {
	emb, ok := s.repo.Store().(interface{ Blockstore() blockstore.Blockstore })
	if !ok {
		return nil, errors.New("remotelog: serve: the repo has no embedded store yet (publish once first)")
	}
	// Identity CIDs (bafkqaaa, the trustless gateway probe) hold their
	// bytes in the CID: the store answers them without holding them.
	blocks := blockstore.NewIdStore(emb.Blockstore())
	bs := blockservice.New(blocks, nil)
	backend, err := gateway.NewBlocksBackend(bs, gateway.WithValueStore(recordStore{s.repo.Names()}))
	if err != nil {
		return nil, fmt.Errorf("remotelog: serve: %w", err)
	}
	gw := guard(gateway.NewHandler(gateway.Config{DeserializedResponses: false}, backend), cmp.Or(s.MaxCARBytes, MaxCARBytes))
	mux := http.NewServeMux()
	mux.Handle("/ipfs/", gw)
	mux.Handle("/ipns/", gw)
	mux.HandleFunc("GET /routing/v1/ipns/{name}", s.routingIPNS)
	mux.HandleFunc("GET /routing/v1/providers/{cid}", s.routingProviders(blocks.Has))
	mux.HandleFunc("GET /rlog/v1/events", s.events)
	mux.HandleFunc("GET /rlog/v1/ephemeral", s.ephemeralEvents)
	mux.Handle("GET /{$}", webPage())
	mux.Handle("GET /web/", webAssets())
	return withCORS(mux), nil
}

// recordStore serves the repo's records to the gateway.
type recordStore struct{ names namesys.Resolver }

func (r recordStore) GetValue(ctx context.Context, key string, _ ...routing.Option) ([]byte, error) {
	name, err := ipns.NameFromRoutingKey([]byte(key))
	if err != nil {
		return nil, routing.ErrNotSupported
	}
	raw, err := r.names.Resolve(ctx, name)
	if errors.Is(err, namesys.ErrNotFound) {
		return nil, routing.ErrNotFound
	}
	return raw, err
}

func (r recordStore) SearchValue(ctx context.Context, key string, _ ...routing.Option) (<-chan []byte, error) {
	v, err := r.GetValue(ctx, key)
	if err != nil {
		return nil, err
	}
	ch := make(chan []byte, 1)
	ch <- v
	close(ch)
	return ch, nil
}

func (r recordStore) PutValue(context.Context, string, []byte, ...routing.Option) error {
	return routing.ErrNotSupported
}

// HeadEvent is what the event stream sends after each publish.
type HeadEvent struct {
	Name      string `json:"name"`
	Head      string `json:"head"`
	Messages  uint64 `json:"messages"`
	RecordSeq uint64 `json:"record_seq"`
	// Record is the signed IPNS record (base64 in JSON), when the sender
	// has it: a reader that verifies it needs not fetch it (the web page).
	Record []byte `json:"record,omitempty"`
}

// subscribers are the followers of the head events: a subscriber too
// slow to take one misses it and catches up on the next one (events only
// say "look again").
type subscribers = fanout[HeadEvent]

// events streams head events as server-sent events; ?name= filters.
func (s *Server) events(rw http.ResponseWriter, r *http.Request) {
	want := r.URL.Query().Get("name")
	serveStream(s, rw, r, &s.subs, "head", func(ev HeadEvent) bool { return want == "" || want == ev.Name })
}

// Control is the local handler other rlog processes use while this one
// owns the repo: POST /append with {"group": base64, "bodies": [base64]}
// or {"group": base64, "file": "/abs/path"}, POST
// /publish. Both answer JSON. It answers only processes of this process's
// user, as ControlServer finds them: served otherwise, it refuses every
// request.
func (s *Server) Control() http.Handler { return checkPeer(s.control()) }

func (s *Server) control() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /append", func(rw http.ResponseWriter, r *http.Request) {
		var req AppendRequest
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1<<30)).Decode(&req); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if req.File != "" {
			a, err := s.w.AppendFile(r.Context(), req.Group, req.File)
			if err == nil && s.OnAppend != nil {
				s.OnAppend([]Appended{a})
			}
			reply(rw, a, err)
			return
		}
		var md *mvds.Metadata
		if len(req.Parents) > 0 {
			md = &mvds.Metadata{Parents: req.Parents}
		}
		out, err := s.w.AppendMeta(r.Context(), req.Group, md, req.Bodies)
		if err == nil && s.OnAppend != nil {
			s.OnAppend(out)
		}
		reply(rw, out, err)
	})
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, r *http.Request) {
		if s.Status == nil {
			http.Error(rw, "no status here", http.StatusNotFound)
			return
		}
		reply(rw, s.Status(), nil)
	})
	mux.HandleFunc("POST /publish", func(rw http.ResponseWriter, r *http.Request) {
		res, err := s.Publish(r.Context())
		reply(rw, res, err)
	})
	return mux
}

// AppendRequest is the body of a control append: bodies, or one file the
// owner reads (an absolute path).
type AppendRequest struct {
	Group  []byte   `json:"group"`
	Bodies [][]byte `json:"bodies,omitempty"`
	File   string   `json:"file,omitempty"`
	// Parents, when given, are the MVDS metadata parents of each body's
	// message (a group conversation's heads).
	Parents [][]byte `json:"parents,omitempty"`
}

func reply(rw http.ResponseWriter, v any, err error) {
	rw.Header().Set("Content-Type", "application/json")
	if err != nil {
		rw.WriteHeader(http.StatusConflict)
		json.NewEncoder(rw).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(rw).Encode(v)
}

// Announce pushes a head event to subscribers (a keeper announces the
// logs it keeps).
func (s *Server) Announce(ev HeadEvent) { s.subs.send(ev) }

// Publish publishes through the owner and pushes the new head to
// subscribers.
func (s *Server) Publish(ctx context.Context) (PublishResult, error) {
	s.mu.Lock()
	res, err := s.w.Publish(ctx, PublishOptions{})
	s.mu.Unlock()
	if err == nil {
		ev := HeadEvent{Name: res.Name.String(), Head: res.Head.String(), Messages: res.Messages, RecordSeq: res.RecordSeq}
		ev.Record, _ = s.repo.Names().Resolve(ctx, res.Name) // without it, readers fetch it
		s.subs.send(ev)
	}
	return res, err
}
