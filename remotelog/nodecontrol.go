package remotelog

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// CommandRequest is a command line another process runs in the node (as
// `ipfs` runs its commands in a running daemon): its arguments, working
// directory (relative paths are read from it) and environment.
type CommandRequest struct {
	Args []string          `json:"args"`
	Dir  string            `json:"dir"`
	Env  map[string]string `json:"env,omitempty"`
}

// CommandRunner runs a command line in a node and returns its exit code;
// what it writes to stdout and stderr reaches the caller as it is written.
type CommandRunner func(ctx context.Context, n *Node, req CommandRequest, stdout, stderr io.Writer) int

// PeerChange is the body of POST /peers on the control socket.
type PeerChange struct {
	Op       string `json:"op"` // add, rm, pause, resume, interval
	Peer     string `json:"peer"`
	Interval int64  `json:"interval,omitempty"`
}

// controlHandler is the node's control socket: the server's (append,
// publish, status) plus peers and commands.
func (n *Node) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", n.srv.control())
	mux.HandleFunc("GET /peers", func(rw http.ResponseWriter, r *http.Request) { reply(rw, n.Peers(), nil) })
	mux.HandleFunc("POST /peers", func(rw http.ResponseWriter, r *http.Request) {
		var pc PeerChange
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1<<20)).Decode(&pc); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		p, err := n.ChangePeer(r.Context(), pc)
		reply(rw, p, err)
	})
	mux.HandleFunc("GET /node", func(rw http.ResponseWriter, r *http.Request) { reply(rw, n.Status(), nil) })
	mux.HandleFunc("POST /run", n.runCommand)
	mux.HandleFunc("POST /ephemeral", func(rw http.ResponseWriter, r *http.Request) {
		var req struct {
			Body []byte `json:"body"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		id, err := n.SendEphemeral(req.Body)
		reply(rw, id.String(), err)
	})
	return mux
}

// ChangePeer applies a peer change as `rlog peer` asks for it: to the
// repo's config, and to the peers the node syncs with.
func (n *Node) ChangePeer(ctx context.Context, pc PeerChange) (PeerConfig, error) {
	p, err := n.changePeers(func(ps []PeerConfig) ([]PeerConfig, PeerConfig, error) { return ApplyPeerChange(ps, pc) })
	if err != nil || n.sync == nil {
		return p, err
	}
	if pc.Op == "rm" {
		n.sync.removePeer(p)
		return p, nil
	}
	if pc.Op == "add" {
		if _, err := n.sync.connect(ctx, p.Addr); err != nil {
			return p, err
		}
	}
	n.sync.setPeer(p)
	return p, nil
}

// ApplyPeerChange changes a list of peers as pc says.
func ApplyPeerChange(ps []PeerConfig, pc PeerChange) ([]PeerConfig, PeerConfig, error) {
	switch pc.Op {
	case "add":
		return AddPeerTo(ps, pc.Peer)
	case "rm":
		return RemovePeerFrom(ps, pc.Peer)
	case "pause", "resume":
		return UpdatePeerIn(ps, pc.Peer, func(p *PeerConfig) error { p.Paused = pc.Op == "pause"; return nil })
	case "interval":
		return UpdatePeerIn(ps, pc.Peer, func(p *PeerConfig) error {
			if pc.Interval < 0 {
				return fmt.Errorf("remotelog: peer interval %d: want 0 or more epochs", pc.Interval)
			}
			p.Interval = pc.Interval
			return nil
		})
	}
	return ps, PeerConfig{}, fmt.Errorf("remotelog: peer change %q: want add, rm, pause, resume or interval", pc.Op)
}

// frame is one line of a /run answer: output on stdout (O) or stderr
// (E), or the exit code, last.
type frame struct {
	O    []byte `json:"o,omitempty"`
	E    []byte `json:"e,omitempty"`
	Exit *int   `json:"exit,omitempty"`
}

// frames writes frames to an HTTP answer, flushing each.
type frames struct {
	mu  sync.Mutex
	enc *json.Encoder
	fl  http.Flusher
}

func (f *frames) send(fr frame) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enc.Encode(fr); err != nil {
		return err
	}
	if f.fl != nil {
		f.fl.Flush()
	}
	return nil
}

type frameWriter struct {
	f      *frames
	stderr bool
}

func (w frameWriter) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	fr := frame{O: b}
	if w.stderr {
		fr = frame{E: b}
	}
	if err := w.f.send(fr); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (n *Node) runCommand(rw http.ResponseWriter, r *http.Request) {
	if n.cfg.Commands == nil {
		http.Error(rw, "this node runs no commands", http.StatusNotFound)
		return
	}
	var req CommandRequest
	if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	rw.Header().Set("Content-Type", "application/x-ndjson")
	fl, _ := rw.(http.Flusher)
	f := &frames{enc: json.NewEncoder(rw), fl: fl}
	code := n.cfg.Commands(r.Context(), n, req, frameWriter{f: f}, frameWriter{f: f, stderr: true})
	f.send(frame{Exit: &code})
}

// Run runs a command line in the node that owns the repo, copying its
// output to stdout and stderr as it comes, and returns its exit code.
func (c *ControlClient) Run(ctx context.Context, req CommandRequest, stdout, stderr io.Writer) (int, error) {
	resp, err := c.post(ctx, "/run", req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var fr frame
		if err := json.Unmarshal(sc.Bytes(), &fr); err != nil {
			return 0, fmt.Errorf("remotelog: the repo's owner answered a command with %q: %w", sc.Bytes(), err)
		}
		switch {
		case fr.Exit != nil:
			return *fr.Exit, nil
		case fr.O != nil:
			stdout.Write(fr.O)
		case fr.E != nil:
			stderr.Write(fr.E)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("remotelog: the repo's owner at %s: %w", c.sock, err)
	}
	return 0, fmt.Errorf("remotelog: the repo's owner at %s stopped before the command ended", c.sock)
}

// NodeStatus asks the owner what it runs and how far it is.
func (c *ControlClient) NodeStatus(ctx context.Context) (NodeStatus, error) {
	var st NodeStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://rlog/node", nil)
	if err != nil {
		return st, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("remotelog: the repo's owner at %s: %w", c.sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("remotelog: the repo's owner has no node status (%s)", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// ChangePeer asks the owner to change a peer.
func (c *ControlClient) ChangePeer(ctx context.Context, pc PeerChange) (PeerConfig, error) {
	var p PeerConfig
	err := c.call(ctx, "/peers", pc, &p)
	return p, err
}

// post sends in as JSON to path and returns the owner's answer, an error
// unless it is 200 OK.
func (c *ControlClient) post(ctx context.Context, path string, in any) (*http.Response, error) {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://rlog"+path, bytesReader(b))
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("remotelog: the repo's owner at %s: %w", c.sock, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("remotelog: the repo's owner: %s: %s", resp.Status, body)
	}
	return resp, nil
}
