package remotelog

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"rlog/mvds"
)

// EphemeralEvent is an ephemeral MVDS message (typing, presence) as a
// node's gateway streams it to its followers at /rlog/v1/ephemeral: once,
// to those connected now; it is never stored, logged or sent again.
type EphemeralEvent struct {
	Group     string `json:"group"` // MVDS group id, hex
	ID        string `json:"id"`    // message id, hex
	From      string `json:"from"`  // the peer id of the node it came from (or that sent it)
	Timestamp int64  `json:"timestamp"`
	Body      []byte `json:"body"` // base64 in JSON
}

func ephemeralEvent(from mvds.PeerID, m mvds.Message) EphemeralEvent {
	id := m.ID()
	return EphemeralEvent{Group: hex.EncodeToString(m.GroupID), ID: hex.EncodeToString(id[:]), From: string(from), Timestamp: m.Timestamp, Body: m.Body}
}

// fanout sends events to the followers of a stream.
type fanout[T any] struct {
	mu   sync.Mutex
	next int
	subs map[int]chan T
}

func (f *fanout[T]) add() (int, chan T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[int]chan T{}
	}
	f.next++
	ch := make(chan T, 16)
	f.subs[f.next] = ch
	return f.next, ch
}

func (f *fanout[T]) remove(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, id)
}

// send gives ev to every follower; one too slow to take it misses it.
func (f *fanout[T]) send(ev T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// AnnounceEphemeral streams ev to the followers connected now; one too
// slow to take it misses it (an ephemeral message is never sent again).
func (s *Server) AnnounceEphemeral(ev EphemeralEvent) { s.eph.send(ev) }

// ephemeralEvents streams ephemeral messages as server-sent events
// ("event: ephemeral", data an EphemeralEvent); ?group=HEX filters.
func (s *Server) ephemeralEvents(rw http.ResponseWriter, r *http.Request) {
	if !s.Ephemeral {
		http.Error(rw, "no ephemeral messages here: this gateway's node does not sync over MVDS ('rlog run --sync --serve' streams them)", http.StatusNotFound)
		return
	}
	want := strings.ToLower(r.URL.Query().Get("group"))
	serveStream(s, rw, r, &s.eph, "ephemeral", func(ev EphemeralEvent) bool { return want == "" || want == ev.Group })
}

// serveStream streams the events of f that keep accepts as server-sent
// events of type kind, JSON each, until the client goes or the server's
// streams close.
func serveStream[T any](s *Server, rw http.ResponseWriter, r *http.Request, f *fanout[T], kind string, keep func(T) bool) {
	fl, ok := rw.(http.Flusher)
	if !ok {
		http.Error(rw, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	id, ch := f.add()
	defer f.remove(id)
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.Header().Set("Cache-Control", "no-cache")
	fmt.Fprintf(rw, ": rlog %s events\n\n", kind)
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		case ev := <-ch:
			if !keep(ev) {
				continue
			}
			b, _ := json.Marshal(ev)
			fmt.Fprintf(rw, "event: %s\ndata: %s\n\n", kind, b)
			fl.Flush()
		}
	}
}

// Ephemeral listens to the ephemeral messages of group (nil: every group)
// that the node behind an `rlog run --sync --serve` gateway receives or
// sends, from now on, until ctx ends or the gateway goes away (the channel
// is then closed). A gateway without them answers an error.
func (g *GatewaySource) Ephemeral(ctx context.Context, group []byte) (<-chan EphemeralEvent, error) {
	u := strings.TrimRight(g.URL, "/") + "/rlog/v1/ephemeral"
	if group != nil {
		u += "?group=" + url.QueryEscape(hex.EncodeToString(group))
	}
	resp, err := g.eventStream(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("remotelog: %s streams no ephemeral messages (%w): it is not an rlog node's gateway", g.URL, err)
	}
	ch := make(chan EphemeralEvent, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev EphemeralEvent
			if json.Unmarshal([]byte(data), &ev) != nil {
				continue // not one of ours: skipped
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// eventStream opens the server-sent event stream at u.
func (g *GatewaySource) eventStream(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := g.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		return nil, errors.New(resp.Status)
	}
	return resp, nil
}
