package mvds

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// NetConfig shapes an in-memory network: each payload is lost with
// probability Loss, duplicated with probability Duplicate, delayed by 0 to
// MaxDelay extra epochs, and, with Reorder, delivered in random order within
// an epoch. Everything is drawn from one seeded generator: a run is
// reproducible from its seed.
type NetConfig struct {
	Loss      float64
	Duplicate float64
	MaxDelay  int
	Reorder   bool
	Seed      uint64
}

// MemNet is an in-memory, lossy network between nodes, for tests and
// simulation. It carries encoded payloads, so every payload goes through
// the wire encoding and decoding.
type MemNet struct {
	cfg      NetConfig
	rng      *rand.Rand
	inflight []packet
	nums     map[PeerID]*Numberings // by the node that hears
	Payloads int                    // sent
	Bytes    int                    // sent
	Messages int                    // MESSAGE copies sent
	Lost     int
}

type packet struct {
	at       int64
	seq      int
	from, to PeerID
	wire     []byte
}

// NewMemNet returns an empty network.
func NewMemNet(cfg NetConfig) *MemNet {
	return &MemNet{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6d7664732d6e6574))}
}

// numberings is what node me has heard its peers write in.
func (m *MemNet) numberings(me PeerID) *Numberings {
	if m.nums == nil {
		m.nums = map[PeerID]*Numberings{}
	}
	if m.nums[me] == nil {
		m.nums[me] = &Numberings{}
	}
	return m.nums[me]
}

// Send puts p from one node to another on the wire at epoch now, in the
// numbering the sender last heard the receiver use.
func (m *MemNet) Send(now int64, from, to PeerID, p Payload) {
	wire := p.MarshalNumbering(m.numberings(from).Of(to))
	m.Payloads++
	m.Bytes += len(wire)
	m.Messages += len(p.Messages)
	copies := 1
	if m.cfg.Duplicate > 0 && m.rng.Float64() < m.cfg.Duplicate {
		copies = 2
	}
	for range copies {
		if m.cfg.Loss > 0 && m.rng.Float64() < m.cfg.Loss {
			m.Lost++
			continue
		}
		delay := int64(0)
		if m.cfg.MaxDelay > 0 {
			delay = int64(m.rng.IntN(m.cfg.MaxDelay + 1))
		}
		m.inflight = append(m.inflight, packet{at: now + delay, seq: len(m.inflight), from: from, to: to, wire: wire})
	}
}

// Deliver hands every payload due by epoch now to deliver, decoded.
func (m *MemNet) Deliver(now int64, deliver func(from, to PeerID, p Payload) error) error {
	var due, later []packet
	for _, p := range m.inflight {
		if p.at <= now {
			due = append(due, p)
		} else {
			later = append(later, p)
		}
	}
	m.inflight = later
	if m.cfg.Reorder {
		m.rng.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	} else {
		slices.SortStableFunc(due, func(a, b packet) int { return int(a.at - b.at) })
	}
	for _, p := range due {
		pl, num, err := UnmarshalPayload(p.wire)
		if err != nil {
			return fmt.Errorf("mvds: memnet: %w", err)
		}
		m.numberings(p.to).Heard(p.from, pl, num)
		if err := deliver(p.from, p.to, pl); err != nil {
			return err
		}
	}
	return nil
}

// Pending is the number of payloads in flight.
func (m *MemNet) Pending() int { return len(m.inflight) }
