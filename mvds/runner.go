package mvds

import (
	"context"
	"sync"
	"time"
)

// Transport sends a payload to a peer. It may fail: MVDS retransmits what
// is not acknowledged.
type Transport interface {
	Send(ctx context.Context, to PeerID, p Payload) error
}

// RunnerConfig configures a Runner: it owns the node's clock (one epoch per
// Epoch, or the Ticks channel in tests), its transport and its persistence.
type RunnerConfig struct {
	Node      *Node
	Transport Transport
	Epoch     time.Duration
	Ticks     <-chan time.Time // overrides Epoch when set
	// Save persists the node's state. It is called before payloads of an
	// epoch are sent and before newly received messages are delivered, so
	// a restarted node neither loses nor delivers again.
	Save func(State) error
	// Deliver hands a new message to the application, once.
	Deliver func(Message)
	// DeliverFrom, when set, is called instead of Deliver with the peer
	// whose payload brought the message.
	DeliverFrom func(from PeerID, m Message)
}

// Runner drives a Node with a clock, a transport and persistence.
type Runner struct {
	cfg   RunnerConfig
	mu    sync.Mutex
	dirty bool
}

// NewRunner returns a runner; Run starts it.
func NewRunner(cfg RunnerConfig) *Runner {
	if cfg.Epoch <= 0 {
		cfg.Epoch = time.Second
	}
	if cfg.Save == nil {
		cfg.Save = func(State) error { return nil }
	}
	if cfg.Deliver == nil {
		cfg.Deliver = func(Message) {}
	}
	return &Runner{cfg: cfg}
}

// Do runs f on the node under the runner's lock (to send, add peers,
// pause), and persists the change.
func (r *Runner) Do(f func(n *Node)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.cfg.Node)
	return r.cfg.Save(r.cfg.Node.State())
}

// Run drives the node until ctx ends, taking received payloads from in.
func (r *Runner) Run(ctx context.Context, in <-chan Packet) error {
	ticks := r.cfg.Ticks
	if ticks == nil {
		t := time.NewTicker(r.cfg.Epoch)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.dirty {
				return r.cfg.Save(r.cfg.Node.State())
			}
			return ctx.Err()
		case <-ticks:
			if err := r.tick(ctx); err != nil {
				return err
			}
		case pk := <-in:
			if err := r.step(pk); err != nil {
				return err
			}
		}
	}
}

func (r *Runner) tick(ctx context.Context) error {
	r.mu.Lock()
	n := r.cfg.Node
	n.Tick()
	rd := n.Ready()
	n.Advance()
	var err error
	if r.dirty || len(rd.Payloads) > 0 {
		err = r.cfg.Save(n.State())
		r.dirty = false
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	for peer, p := range rd.Payloads {
		_ = r.cfg.Transport.Send(ctx, peer, p) // lost like any payload: retransmitted
	}
	return nil
}

func (r *Runner) step(pk Packet) error {
	r.mu.Lock()
	n := r.cfg.Node
	if err := n.Step(pk.From, pk.Payload); err != nil {
		r.mu.Unlock()
		return nil // malformed: nothing changed, nothing to do
	}
	rd := n.Ready()
	n.Advance()
	var err error
	if len(rd.Deliver) > 0 {
		err = r.cfg.Save(n.State())
		r.dirty = false
	} else {
		r.dirty = true
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	for _, m := range rd.Deliver {
		if r.cfg.DeliverFrom != nil {
			r.cfg.DeliverFrom(pk.From, m)
		} else {
			r.cfg.Deliver(m)
		}
	}
	return nil
}
