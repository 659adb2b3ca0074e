package mvds

import (
	"maps"
	"math"
	"slices"
)

// PeerID names a peer: opaque bytes (a libp2p peer id, a public key).
type PeerID string

// Mode is how a node syncs a message: batch sends MESSAGE at once;
// interactive sends OFFER, and MESSAGE only when the peer REQUESTs it.
type Mode int

const (
	Batch Mode = iota
	Interactive
)

func (m Mode) String() string {
	if m == Interactive {
		return "interactive"
	}
	return "batch"
}

// RecordType is what a node owes a peer for one message.
type RecordType int

const (
	RecordMessage RecordType = iota
	RecordOffer
	RecordRequest
)

func (t RecordType) String() string {
	return [...]string{"MESSAGE", "OFFER", "REQUEST"}[t]
}

// Record is one retransmission record: what is owed, to whom, how often it
// was sent, when first and last (0 before the first send) and when it is
// due again.
type Record struct {
	Type      RecordType
	Peer      PeerID
	ID        MessageID
	Group     []byte
	SendCount int
	SendEpoch int64
	FirstSent int64 `json:",omitempty"`
	LastSent  int64 `json:",omitempty"`
}

// Backoff is the retransmission schedule, a pure function of the send
// count and the peer's retransmission timeout (RTO, one round trip to that
// peer, see RTT): after the n-th send of a record the next is due
// min(Gap(n)·RTO, Max) epochs later.
type Backoff struct {
	// Patience is how many sends go out one RTO apart before backing off.
	Patience int
	// Max bounds the gap, in epochs.
	Max int64
}

// DefaultBackoff retransmits once per round trip for 8 sends, then doubles
// the gap up to 64 epochs.
var DefaultBackoff = Backoff{Patience: 8, Max: 64}

// Gap is the multiple of the RTO to wait after the n-th send (n >= 1).
func (b Backoff) Gap(n int) int64 {
	if n <= b.Patience {
		return 1
	}
	shift := min(n-b.Patience, 62)
	return min(int64(1)<<shift, max(b.Max, 1))
}

// wait is the number of epochs to wait after the n-th send to a peer
// whose RTO is rto.
func (b Backoff) wait(n int, rto int64) int64 {
	g := b.Gap(n)
	if g > max(b.Max, 1)/max(rto, 1) {
		return max(b.Max, 1)
	}
	return max(g*rto, 1)
}

// InitialRTO is the retransmission timeout, in epochs, towards a peer not
// yet measured, and the least one: a peer answers at its next epoch at
// the soonest, and its answer is read the epoch after, so a
// retransmission sooner than two epochs may cross the answer.
const InitialRTO = 2

// RTT is what a node has learned of how long one peer takes to answer, in
// epochs: a smoothed mean and mean deviation of the epochs between a send
// and the answer that clears it (ACK, REQUEST or MESSAGE), as TCP keeps
// them (RFC 6298), sampled once per received payload, from records sent
// once (an answer to a retransmitted record is ambiguous; see observeRTT
// for the exceptions).
type RTT struct {
	Mean    float64 `json:"mean"`
	Dev     float64 `json:"dev"`
	Samples int     `json:"samples"`
}

// observe folds in one sample.
func (r *RTT) observe(sample int64) {
	x := float64(sample)
	if r.Samples == 0 {
		r.Mean, r.Dev = x, 0
	} else {
		r.Dev += (math.Abs(x-r.Mean) - r.Dev) / 4
		r.Mean += (x - r.Mean) / 8
	}
	r.Samples++
}

// RTO is the epochs to wait for an answer before sending again: the
// smoothed round trip plus its deviation, rounded up, plus the epoch in
// which the answer is read, and never less than InitialRTO: a peer
// answers at its own next epoch, which may come a whole epoch after an
// answer that once came at once.
func (r RTT) RTO() int64 {
	if r.Samples == 0 {
		return InitialRTO
	}
	return max(InitialRTO, int64(math.Ceil(r.Mean+r.Dev-1e-9))+1)
}

// Config configures a Node.
type Config struct {
	ID      PeerID
	Mode    Mode // for messages this node sends or relays, unless told otherwise
	Backoff Backoff
	// MaxSends drops a record after this many sends: a peer silent that
	// long is not kept forever (its messages are still in the remote log).
	// Zero means 50.
	MaxSends int
}

// Node is the MVDS protocol as a pure state machine, in the style of
// etcd raft's RawNode: no clock, no goroutines, no I/O. Inputs: Send (a
// message to sync), Step (a payload from a peer), Tick (an epoch passes),
// Have (a message that came another way, such as the remote log). Output:
// Ready, what to send, deliver and persist; Advance once handled.
type Node struct {
	cfg   Config
	epoch int64
	peers map[string]map[PeerID]bool // group -> peers
	store map[MessageID]Message      // every message this node has
	recs  map[recKey]*Record
	acks  map[PeerID][]MessageID // ACKs to send
	ready Ready
	opts  map[PeerID]PeerOptions
	rtt   map[PeerID]*RTT
	// Ephemeral messages: to send once at the next epoch, and those
	// received lately (by epoch), to deliver once. Neither is state.
	outbox    map[PeerID][]Message
	ephemeral map[MessageID]int64
	// acked is when each peer acknowledged a message, for a while (not
	// state): a REQUEST that crossed the MESSAGE is not answered, and a
	// second ACK tells a retransmission was spurious.
	acked map[peerMsg]ack
	// Dropped counts records given up after MaxSends.
	Dropped int
}

type peerMsg struct {
	peer PeerID
	id   MessageID
}

// ack is a peer's first ACK of a MESSAGE: when, and for one sent more
// than once, the epochs since its first send.
type ack struct {
	at, sinceFirst int64
}

type recKey struct {
	peer PeerID
	id   MessageID
	typ  RecordType
}

// Ready is what the node asks its runner to do, in order: persist State,
// send Payloads, hand Deliver to the application.
type Ready struct {
	Payloads map[PeerID]Payload
	Deliver  []Message
}

// Empty reports nothing to do.
func (r *Ready) Empty() bool { return len(r.Payloads) == 0 && len(r.Deliver) == 0 }

// NewNode returns a node at epoch 0 with no peers.
func NewNode(cfg Config) *Node {
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxSends <= 0 {
		cfg.MaxSends = 50
	}
	return &Node{cfg: cfg, peers: map[string]map[PeerID]bool{}, store: map[MessageID]Message{},
		recs: map[recKey]*Record{}, acks: map[PeerID][]MessageID{}, opts: map[PeerID]PeerOptions{},
		rtt: map[PeerID]*RTT{}, outbox: map[PeerID][]Message{}, ephemeral: map[MessageID]int64{},
		acked: map[peerMsg]ack{}}
}

// PeerOptions tune how a node syncs with one peer.
type PeerOptions struct {
	// Paused holds everything owed to the peer (records keep their due
	// epochs, ACKs wait) until it is resumed.
	Paused bool
	// Interval syncs with the peer only every Interval epochs (0 or 1:
	// every epoch).
	Interval int64
}

// SetPeer sets how the node syncs with peer.
func (n *Node) SetPeer(peer PeerID, o PeerOptions) { n.opts[peer] = o }

// serves reports whether peer gets a payload this epoch.
func (n *Node) serves(peer PeerID) bool {
	o := n.opts[peer]
	return !o.Paused && (o.Interval <= 1 || n.epoch%o.Interval == 0)
}

// Epoch is the node's current epoch.
func (n *Node) Epoch() int64 { return n.epoch }

// AddPeer makes peer a member of group. Messages of the group the node
// already has are offered or sent to it.
func (n *Node) AddPeer(group []byte, peer PeerID) {
	g := string(group)
	if n.peers[g] == nil {
		n.peers[g] = map[PeerID]bool{}
	}
	if n.peers[g][peer] || peer == n.cfg.ID {
		return
	}
	n.peers[g][peer] = true
	for id, m := range n.store {
		if string(m.GroupID) == g {
			n.owe(peer, id, g, n.cfg.Mode)
		}
	}
}

// RemovePeer drops peer from group and every record owed to it there.
func (n *Node) RemovePeer(group []byte, peer PeerID) {
	delete(n.peers[string(group)], peer)
	n.outbox[peer] = slices.DeleteFunc(n.outbox[peer], func(m Message) bool { return string(m.GroupID) == string(group) })
	for k, r := range n.recs {
		if k.peer == peer && string(r.Group) == string(group) {
			delete(n.recs, k)
		}
	}
}

// Peers lists the peers of group, sorted.
func (n *Node) Peers(group []byte) []PeerID {
	return slices.Sorted(maps.Keys(n.peers[string(group)]))
}

// owe records that peer is owed message id in the given mode.
func (n *Node) owe(peer PeerID, id MessageID, group string, mode Mode) {
	typ := RecordMessage
	if mode == Interactive {
		typ = RecordOffer
	}
	k := recKey{peer, id, typ}
	if _, ok := n.recs[k]; !ok {
		n.recs[k] = &Record{Type: typ, Peer: peer, ID: id, Group: []byte(group), SendEpoch: n.epoch}
	}
}

// Send syncs m to the members of its group with the node's mode. The
// application already has m: it is not delivered back.
func (n *Node) Send(m Message) MessageID { return n.SendMode(m, n.cfg.Mode) }

// SendMode is Send with a mode for this message.
//
// An ephemeral message (m.Ephemeral) goes out once, as a MESSAGE in any
// mode, at the next epoch to the members of its group: it is not stored,
// not retransmitted and no ACK is awaited.
func (n *Node) SendMode(m Message, mode Mode) MessageID {
	id := m.ID()
	if m.Ephemeral() {
		for p := range n.peers[string(m.GroupID)] {
			n.outbox[p] = append(n.outbox[p], m)
		}
		return id
	}
	if _, ok := n.store[id]; ok {
		return id
	}
	n.store[id] = m
	for p := range n.peers[string(m.GroupID)] {
		n.owe(p, id, string(m.GroupID), mode)
	}
	return id
}

// validIDs is ids without those that are not 32 bytes long.
func validIDs(ids [][]byte) [][]byte {
	var out [][]byte
	for _, id := range ids {
		if len(id) == 32 {
			out = append(out, id)
		}
	}
	return out
}

// Have tells the node about a message that reached the application another
// way (the remote log): it is not delivered again, it is acknowledged when
// a peer offers or sends it, and the node shares it like its own.
//
// An ephemeral message is never stored, so Have ignores it.
func (n *Node) Have(m Message) {
	if m.Ephemeral() {
		return
	}
	n.SendMode(m, n.cfg.Mode)
}

// Step handles a payload received from peer. An id of another length than
// 32 is dropped alone, as the reference implementations drop it: the rest
// of the payload, its messages included, is taken.
func (n *Node) Step(from PeerID, p Payload) error {
	p.Acks, p.Offers, p.Requests = validIDs(p.Acks), validIDs(p.Offers), validIDs(p.Requests)
	// Round trips this payload answers: the longest of records sent once,
	// and the shortest since the first send of records sent more often.
	clean, ambiguous := int64(-1), int64(-1)
	answered := func(k recKey) {
		r, ok := n.recs[k]
		if !ok {
			return
		}
		switch {
		case r.SendCount == 1 && r.LastSent > 0:
			clean = max(clean, n.epoch-r.LastSent)
		case r.Type == RecordMessage && r.SendCount > 1 && r.FirstSent > 0 && (ambiguous < 0 || n.epoch-r.FirstSent < ambiguous):
			ambiguous = n.epoch - r.FirstSent
		}
		delete(n.recs, k)
	}
	defer func() { n.observeRTT(from, clean, ambiguous) }()
	for _, raw := range p.Acks {
		id := MessageID(raw)
		pm := peerMsg{from, id}
		if r, ok := n.recs[recKey{from, id, RecordMessage}]; ok {
			a := ack{at: n.epoch}
			if r.SendCount > 1 && r.FirstSent > 0 {
				a.sinceFirst = n.epoch - r.FirstSent
			}
			n.acked[pm] = a
		} else if a, ok := n.acked[pm]; ok && a.sinceFirst > 0 {
			// A second ACK: both copies arrived, so the first ACK answered
			// the first copy and the retransmission was spurious: the round
			// trip is known after all.
			clean = max(clean, a.sinceFirst)
			a.sinceFirst = 0
			n.acked[pm] = a
		}
		answered(recKey{from, id, RecordMessage})
		answered(recKey{from, id, RecordOffer})
	}
	for _, raw := range p.Offers {
		id := MessageID(raw)
		_, have := n.store[id]
		if _, ok := n.ephemeral[id]; have || ok {
			// Already have it (maybe from the remote log, or an ephemeral
			// one delivered lately): acknowledge, so the peer stops offering.
			n.acks[from] = append(n.acks[from], id)
			continue
		}
		k := recKey{from, id, RecordRequest}
		if _, ok := n.recs[k]; !ok {
			n.recs[k] = &Record{Type: RecordRequest, Peer: from, ID: id, SendEpoch: n.epoch}
		}
	}
	for _, raw := range p.Requests {
		id := MessageID(raw)
		m, ok := n.store[id]
		if !ok || !n.peers[string(m.GroupID)][from] {
			continue // unknown, or asked by a peer not in its group: both references refuse
		}
		answered(recKey{from, id, RecordOffer})
		if a, ok := n.acked[peerMsg{from, id}]; ok && n.epoch-a.at <= 2*n.RTT(from).RTO() {
			// The peer acknowledged the message a round trip ago: this
			// REQUEST crossed the MESSAGE (the references send one again
			// until the MESSAGE arrives, and deliver every copy).
			continue
		}
		k := recKey{from, id, RecordMessage}
		if _, ok := n.recs[k]; !ok {
			n.recs[k] = &Record{Type: RecordMessage, Peer: from, ID: id, Group: m.GroupID, SendEpoch: n.epoch}
		}
	}
	for _, m := range p.Messages {
		id := m.ID()
		if m.Ephemeral() {
			n.stepEphemeral(from, id, m)
			continue
		}
		// Every copy is acknowledged, so a lost ACK never makes the sender
		// retransmit forever.
		n.acks[from] = append(n.acks[from], id)
		answered(recKey{from, id, RecordRequest})
		if _, ok := n.store[id]; ok {
			continue // a duplicate: delivered once already
		}
		n.store[id] = m
		n.ready.Deliver = append(n.ready.Deliver, m)
		// Share with the group's other members.
		for p := range n.peers[string(m.GroupID)] {
			if p != from {
				n.owe(p, id, string(m.GroupID), n.cfg.Mode)
			}
		}
	}
	return nil
}

// ephemeralMemory is how many epochs a node remembers an ephemeral
// message it delivered, so that a copy the network duplicated is not
// delivered again.
const ephemeralMemory = 64

// stepEphemeral takes an ephemeral message from peer: delivered once,
// neither stored nor relayed. Every copy is acknowledged although no
// sender should await it: vacp2p/mvds sends one again until acknowledged.
func (n *Node) stepEphemeral(from PeerID, id MessageID, m Message) {
	n.acks[from] = append(n.acks[from], id)
	// A vacp2p node offers ephemeral messages in interactive mode: what was
	// requested has come, from whichever peer (one that relayed the offer
	// does not keep the message to answer).
	for p := range n.peers[string(m.GroupID)] {
		delete(n.recs, recKey{p, id, RecordRequest})
	}
	delete(n.recs, recKey{from, id, RecordRequest})
	if _, ok := n.store[id]; ok {
		return
	}
	if _, ok := n.ephemeral[id]; ok {
		return
	}
	n.ephemeral[id] = n.epoch
	n.ready.Deliver = append(n.ready.Deliver, m)
}

// Tick advances the epoch and puts every due record into the payload of
// its peer: at most one payload per peer per epoch, with pending ACKs and
// ephemeral messages.
func (n *Node) Tick() {
	n.epoch++
	out := n.ready.Payloads
	if out == nil {
		out = map[PeerID]Payload{}
	}
	for id, at := range n.ephemeral {
		if n.epoch-at > ephemeralMemory {
			delete(n.ephemeral, id)
		}
	}
	for k, a := range n.acked {
		if n.epoch-a.at > 2*max(n.cfg.Backoff.Max, 1) {
			delete(n.acked, k)
		}
	}
	for peer, ms := range n.outbox {
		if !n.serves(peer) {
			continue
		}
		p := out[peer]
		p.Messages = append(p.Messages, ms...)
		out[peer] = p
		delete(n.outbox, peer)
	}
	// Due records in a fixed order, so runs are reproducible.
	var due []recKey
	for k, r := range n.recs {
		if r.SendEpoch <= n.epoch && n.serves(k.peer) {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b recKey) int {
		if c := cmpStr(string(a.peer), string(b.peer)); c != 0 {
			return c
		}
		if a.typ != b.typ {
			return int(a.typ) - int(b.typ)
		}
		return cmpStr(string(a.id[:]), string(b.id[:]))
	})
	for _, k := range due {
		r := n.recs[k]
		if r.SendCount >= n.cfg.MaxSends {
			delete(n.recs, k) // silent too long: let it go
			n.Dropped++
			continue
		}
		p := out[r.Peer]
		switch r.Type {
		case RecordMessage:
			p.Messages = append(p.Messages, n.store[r.ID])
		case RecordOffer:
			p.Offers = append(p.Offers, r.ID[:])
		case RecordRequest:
			p.Requests = append(p.Requests, r.ID[:])
		}
		out[r.Peer] = p
		r.SendCount++
		r.LastSent = n.epoch
		if r.SendCount == 1 {
			r.FirstSent = n.epoch
		}
		// An OFFER or a REQUEST (an id) goes again each epoch: waiting a
		// round trip at each of the three legs of the interactive exchange
		// would add up. A MESSAGE waits one.
		rto := int64(1)
		if r.Type == RecordMessage {
			rto = n.RTT(r.Peer).RTO()
		}
		r.SendEpoch = n.epoch + n.cfg.Backoff.wait(r.SendCount, rto)
	}
	for peer, ids := range n.acks {
		if !n.serves(peer) {
			continue
		}
		p := out[peer]
		for _, id := range ids {
			p.Acks = append(p.Acks, id[:])
		}
		out[peer] = p
		delete(n.acks, peer)
	}
	if len(out) > 0 {
		n.ready.Payloads = out
	}
}

// RTT is what the node has learned of peer's round trip.
func (n *Node) RTT(peer PeerID) RTT {
	if r := n.rtt[peer]; r != nil {
		return *r
	}
	return RTT{}
}

// observeRTT learns from one received payload that answered records of
// peer: clean is the longest round trip of records sent once, ambiguous
// the shortest since the first send of records sent more than once (-1:
// none). An answer to a retransmitted record may answer any of its copies,
// so it is not a sample (Karn's rule), unless the payload answers nothing
// else: a peer slower than the node's estimate gets every record sent
// twice and would otherwise never be measured; measured from the first
// send, it raises the estimate until records are answered before they are
// sent again.
func (n *Node) observeRTT(peer PeerID, clean, ambiguous int64) {
	sample := clean
	if sample < 0 {
		sample = ambiguous
	}
	if sample < 0 {
		return
	}
	if n.rtt[peer] == nil {
		n.rtt[peer] = &RTT{}
	}
	n.rtt[peer].observe(sample)
}

// Ready returns what to do now. Call Advance after handling it.
func (n *Node) Ready() Ready { return n.ready }

// Advance acknowledges that the last Ready was handled.
func (n *Node) Advance() { n.ready = Ready{} }

// Records lists the retransmission records, sorted by peer, type and id.
func (n *Node) Records() []Record {
	out := make([]Record, 0, len(n.recs))
	for _, r := range n.recs {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Record) int {
		if a.Peer != b.Peer {
			return cmpStr(string(a.Peer), string(b.Peer))
		}
		if a.Type != b.Type {
			return int(a.Type) - int(b.Type)
		}
		return cmpStr(string(a.ID[:]), string(b.ID[:]))
	})
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Has reports whether the node has message id.
func (n *Node) Has(id MessageID) bool { _, ok := n.store[id]; return ok }
