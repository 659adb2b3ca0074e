package remotelog

import (
	"encoding/binary"
	"sort"

	"rlog/mvds"
)

// GroupMessage is a message of a group conversation as the merge delivers
// it: the member whose log holds it (Author, an index into the group's
// members; for a message that came over MVDS, the member whose key sent
// it, -1 if none), the ids it names as its parents (4/MVDS-META), and Gap,
// the parents it was delivered without (only by Merger.Flush). A
// GroupReader delivers Message without its wire form and metadata
// (Parents has the parents).
type GroupMessage struct {
	Author  int
	ID      mvds.MessageID
	Parents []mvds.MessageID
	Height  uint64 // 1 + the greatest height of its parents and its author's previous message
	Gap     []mvds.MessageID
	Message Message
}

// Merger joins the logs of a group's members into one stream in causal
// order. It is pure: the caller reads each member's log (in log order) and
// hands its messages to Add; Next then gives what can be delivered.
//
// The order: a message comes after its parents and after the previous
// message of its author's log. Among messages that may come next, the one
// of least height, then least id, comes first. Since a message's height is
// above its parents', this is the order of (height, id) over the whole DAG:
// every reader holding the same messages delivers them in the same order,
// however they arrived. A message whose parent is missing waits, with what
// depends on it, until the parent arrives; the others flow.
type Merger struct {
	seen    map[uint64]*mnode           // every message added, by its id's first 8 bytes (see find)
	waiters map[mvds.MessageID][]*mnode // by parents not added yet
	last    []*mnode                    // each author's last message added
	slab    []mnode
	mem     arena
	group   []byte // the group of the messages added (nearly always one)
	ready   readyHeap
	waiting int
	// known are messages delivered before (an earlier run, or compacted
	// away: see Compact), by id, with their heights; order is the ids in
	// the order they became known, oldest first, for Compact to forget.
	known map[mvds.MessageID]uint64
	order []mvds.MessageID
	// stable, when above 0, is the number of members each message must
	// be acknowledged by before it is delivered (see Stable).
	stable   int
	ackStale bool
	walk     uint32
}

// mnode is a message in the merge. A group catch-up holds every message
// read until all members were read, so a node is kept small: its body and
// parents are copied into the merge's arena (no allocation of their own,
// fewer objects for the garbage collector), what is rare (a gap, metadata,
// another group) is kept apart, and what is delivered is cleared but its
// id and height.
type mnode struct {
	id       mvds.MessageID
	height   uint64 // 1 + the greatest height of its parents and its author's previous message
	seq      uint64
	ts       int64
	body     []byte           // in the arena
	parents  []mvds.MessageID // in the arena
	child    *mnode           // the first waiting for it (most have one or none)
	children []*mnode         // the others waiting for it
	same     *mnode           // the next message whose id starts with the same 8 bytes
	prev     *mnode           // the previous message of its author's log, when added
	rare     *mrare           // nil for most
	author   int32
	missing  int32  // parents not yet delivered
	acks     int32  // members whose last message is it or follows it (Stable)
	mark     uint32 // the last walk that counted it (Stable)
	// delivered: given by Next (then only id, height and author are kept);
	// live: added by AddLive, not in its author's chain.
	delivered, live bool
}

// mrare is what few messages have: the parents delivered without (Flush),
// metadata, a group other than the merge's, a body size other than the
// body's length (a large message's reference).
type mrare struct {
	gap        []mvds.MessageID
	md         *mvds.Metadata
	group      []byte
	otherGroup bool // group is the message's, not the merge's
	size       uint64
}

func (n *mnode) rareOf() *mrare {
	if n.rare == nil {
		n.rare = &mrare{}
	}
	return n.rare
}

// groupMessage is what Next gives of n: its Message without the wire
// form, large body reference or body file (a group holds small messages
// only).
func (m *Merger) groupMessage(n *mnode) GroupMessage {
	msg := Message{Seq: n.seq, ID: n.id, BodySize: uint64(len(n.body)), Message: mvds.Message{GroupID: m.group, Timestamp: n.ts, Body: n.body}}
	gm := GroupMessage{Author: int(n.author), ID: n.id, Parents: n.parents, Height: n.height}
	if r := n.rare; r != nil {
		gm.Gap = r.gap
		msg.Metadata = r.md
		if r.otherGroup {
			msg.GroupID = r.group
		}
		if r.size != 0 {
			msg.BodySize = r.size
		}
	}
	gm.Message = msg
	return gm
}

// arena holds the bodies and parents of the messages in the merge, packed
// in chunks: a body or parent list delivered is a slice of its chunk (its
// capacity cut to its length), which lives while anything in it does.
type arena struct {
	bytes []byte
	ids   []mvds.MessageID
}

const (
	arenaBytes = 32 << 10 // a chunk of bodies
	arenaIDs   = 512      // a chunk of parents (16 KiB)
)

// body copies b into the arena.
func (a *arena) body(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > arenaBytes/8 {
		return append([]byte(nil), b...) // large: its own
	}
	if cap(a.bytes)-len(a.bytes) < len(b) {
		a.bytes = make([]byte, 0, arenaBytes)
	}
	off := len(a.bytes)
	a.bytes = append(a.bytes, b...)
	return a.bytes[off:len(a.bytes):len(a.bytes)]
}

// parents copies ps into the arena.
func (a *arena) parents(ps []mvds.MessageID) []mvds.MessageID {
	if len(ps) == 0 {
		return nil
	}
	if len(ps) > arenaIDs/8 {
		return append([]mvds.MessageID(nil), ps...)
	}
	if cap(a.ids)-len(a.ids) < len(ps) {
		a.ids = make([]mvds.MessageID, 0, arenaIDs)
	}
	off := len(a.ids)
	a.ids = append(a.ids, ps...)
	return a.ids[off:len(a.ids):len(a.ids)]
}

// NewMerger returns an empty merge.
func NewMerger() *Merger {
	return &Merger{seen: map[uint64]*mnode{}, waiters: map[mvds.MessageID][]*mnode{}, known: map[mvds.MessageID]uint64{}}
}

// Add hands the merge the next message of author's log. A message already
// added (the same id from another source) is ignored: Add reports false.
// The merge keeps of msg what GroupMessage.Message gives back: not its
// wire form (Wire), nor a large message's body reference or file. It
// copies msg's body and parents (the caller may reuse them): the body
// delivered is a slice of a chunk the merge packs bodies in, which stays
// in memory while any body in it is held.
func (m *Merger) Add(author int, id mvds.MessageID, parents []mvds.MessageID, msg Message) bool {
	return m.add(author, id, parents, msg, false)
}

// AddLive hands the merge a message that came another way than its
// author's log (over MVDS from a peer online now): it comes after its
// parents only, as it is not known where it stands in its author's log
// (a writer naming the group's heads names its own previous message or
// one that follows it, so its order is the same). author is the member
// it is taken to be from (-1: none known). When the author's log gives it
// later, Add ignores it.
func (m *Merger) AddLive(author int, id mvds.MessageID, parents []mvds.MessageID, msg Message) bool {
	return m.add(author, id, parents, msg, true)
}

func (m *Merger) add(author int, id mvds.MessageID, parents []mvds.MessageID, msg Message, live bool) bool {
	return m.addNode(author, id, parents, msg, live) != nil
}

// addNode adds a message and returns its node, nil if it was added or
// known before.
func (m *Merger) addNode(author int, id mvds.MessageID, parents []mvds.MessageID, msg Message, live bool) *mnode {
	if m.Has(id) {
		return nil
	}
	n := m.alloc()
	m.ackStale = true
	n.id, n.author, n.seq, n.ts, n.live = id, int32(author), msg.Seq, msg.Timestamp, live
	n.body = m.mem.body(msg.Body)
	n.parents = m.mem.parents(parents)
	if m.group == nil && msg.GroupID != nil {
		m.group = append([]byte{}, msg.GroupID...)
	}
	if string(msg.GroupID) != string(m.group) || (msg.GroupID == nil) != (m.group == nil) {
		n.rareOf().group, n.rare.otherGroup = msg.GroupID, true
	}
	if msg.Metadata != nil {
		n.rareOf().md = msg.Metadata
	}
	if msg.BodySize != uint64(len(msg.Body)) {
		n.rareOf().size = msg.BodySize
	}
	k := idKey(id)
	n.same = m.seen[k]
	m.seen[k] = n
	// Those that named it before it came now wait for it as a known parent.
	if ws, ok := m.waiters[id]; ok {
		n.children = ws
		delete(m.waiters, id)
	}
	if !live && author >= 0 {
		for author >= len(m.last) {
			m.last = append(m.last, nil)
		}
		if prev := m.last[author]; prev != nil {
			m.dependOn(n, prev)
			if !prev.delivered {
				n.prev = prev
			}
		}
		m.last[author] = n
	}
	for _, p := range n.parents {
		if p == id {
			continue // a message cannot wait for itself
		}
		if pn := m.find(p); pn != nil {
			m.dependOn(n, pn)
			continue
		}
		if h, ok := m.known[p]; ok {
			n.height = max(n.height, h)
			continue
		}
		if ws := m.waiters[p]; containsNode(ws, n) {
			continue // a parent named twice
		}
		n.missing++
		m.waiters[p] = append(m.waiters[p], n)
	}
	if n.missing == 0 {
		n.height++
		m.ready.push(n)
	} else {
		m.waiting++
	}
	return n
}

// idKey is the first 8 bytes of an id. Ids are SHA-256 hashes, so
// messages sharing them are rare (a writer can make them, at a cost): they
// are chained, and find compares whole ids.
func idKey(id mvds.MessageID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// find returns the message of id added, nil if none.
func (m *Merger) find(id mvds.MessageID) *mnode {
	for n := m.seen[idKey(id)]; n != nil; n = n.same {
		if n.id == id {
			return n
		}
	}
	return nil
}

// Has reports whether the message of id was added or is known.
func (m *Merger) Has(id mvds.MessageID) bool {
	if m.find(id) != nil {
		return true
	}
	_, ok := m.known[id]
	return ok
}

// Delivered reports whether the message of id was delivered (or known).
func (m *Merger) Delivered(id mvds.MessageID) bool {
	if n := m.find(id); n != nil {
		return n.delivered
	}
	_, ok := m.known[id]
	return ok
}

// Known records a message delivered before (an earlier run): those naming
// it do not wait for it, and it is not delivered again.
func (m *Merger) Known(id mvds.MessageID, height uint64) {
	if m.Has(id) {
		return
	}
	m.known[id] = height
	m.order = append(m.order, id)
}

// Compact keeps of the messages delivered only their ids and heights, and
// of those only the window most recently delivered (window <= 0: all): a
// message naming a parent forgotten waits for it as for one never read.
// It keeps a long-running merge's memory bounded.
func (m *Merger) Compact(window int) {
	var done []*mnode
	for k, n := range m.seen {
		var keep *mnode
		for n != nil {
			next := n.same
			if n.delivered {
				done = append(done, n)
			} else {
				n.same = keep
				keep = n
			}
			n = next
		}
		if keep == nil {
			delete(m.seen, k)
		} else {
			m.seen[k] = keep
		}
	}
	// Oldest first: the order of delivery, (height, id).
	sort.Slice(done, func(i, j int) bool {
		if done[i].height != done[j].height {
			return done[i].height < done[j].height
		}
		return lessID(done[i].id, done[j].id)
	})
	for _, n := range done {
		n.same = nil
		m.Known(n.id, n.height)
	}
	if window > 0 && len(m.order) > window {
		drop := len(m.order) - window
		for _, id := range m.order[:drop] {
			delete(m.known, id)
		}
		m.order = append([]mvds.MessageID(nil), m.order[drop:]...)
	}
}

// dependOn makes n wait for p unless p was delivered.
func (m *Merger) dependOn(n, p *mnode) {
	if p.delivered {
		n.height = max(n.height, p.height)
		return
	}
	if p.child == n || containsNode(p.children, n) {
		return // a parent named twice, or the previous named too
	}
	n.missing++
	if p.child == nil {
		p.child = n
	} else {
		p.children = append(p.children, n)
	}
}

// alloc takes a node from a slab: one allocation per 256 messages. A slab
// stays in memory while a node in it is referenced (each author's last
// message is, after Compact too): small slabs keep that small.
func (m *Merger) alloc() *mnode {
	if len(m.slab) == 0 {
		m.slab = make([]mnode, 256)
	}
	n := &m.slab[0]
	m.slab = m.slab[1:]
	return n
}

func containsNode(ns []*mnode, n *mnode) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}

// Stable makes the merge deliver a message only once it is stable: each
// of members members (authors 0 to members-1) has in its log, as added, a
// message that is it or follows it (names it as a parent, or a message
// that does, or comes after it in its own log). A message that comes
// later follows every member's last message, so it comes after every
// stable one in the (height, id) order: readers deliver the same total
// order whenever they read and whatever part of the logs they have read,
// each what is stable for it, a prefix of the same sequence. The price:
// a message waits until every member has written after it (a silent
// member holds back everything), and Next costs a walk of the messages
// not delivered after each Add. Flush delivers what waits all the same.
func (m *Merger) Stable(members int) { m.stable = members }

// countAcks counts, for each message not delivered, the members whose
// last message is it or follows it.
func (m *Merger) countAcks() {
	m.ackStale = false
	for _, n := range m.seen {
		for ; n != nil; n = n.same {
			n.acks = 0
		}
	}
	var stack []*mnode
	for a := 0; a < m.stable && a < len(m.last); a++ {
		if m.walk++; m.walk == 0 { // wrapped: no mark may look current
			for _, n := range m.seen {
				for ; n != nil; n = n.same {
					n.mark = 0
				}
			}
			m.walk = 1
		}
		stack = append(stack[:0], m.last[a])
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if n == nil || n.delivered || n.mark == m.walk {
				continue
			}
			n.mark = m.walk
			n.acks++
			stack = append(stack, n.prev)
			for _, p := range n.parents {
				stack = append(stack, m.find(p))
			}
		}
	}
}

// Next returns the next message to deliver, false when none can be now.
func (m *Merger) Next() (GroupMessage, bool) {
	if m.ready.Len() == 0 {
		return GroupMessage{}, false
	}
	if m.stable > 0 {
		if m.ackStale {
			m.countAcks()
		}
		if int(m.ready[0].acks) < m.stable {
			return GroupMessage{}, false
		}
	}
	n := m.ready.pop()
	m.deliver(n)
	g := m.groupMessage(n)
	// Keep only what later messages need: the id and height.
	n.body, n.parents, n.rare, n.prev = nil, nil, nil, nil
	return g, true
}

func (m *Merger) deliver(n *mnode) {
	n.delivered = true
	if n.child != nil {
		m.release(n, n.child)
		n.child = nil
	}
	for _, w := range n.children {
		m.release(n, w)
	}
	n.children = nil
}

// release tells w that its parent p was delivered.
func (m *Merger) release(p, w *mnode) {
	w.height = max(w.height, p.height)
	if w.missing--; w.missing == 0 {
		w.height++
		m.waiting--
		m.ready.push(w)
	}
}

// Waiting reports the messages held back, by author, and the parents they
// wait for that no member's log has given yet.
func (m *Merger) Waiting() (byAuthor map[int]int, missing []mvds.MessageID) {
	byAuthor = map[int]int{}
	for id := range m.waiters {
		missing = append(missing, id)
	}
	for _, n := range m.seen {
		for ; n != nil; n = n.same {
			if !n.delivered && n.missing > 0 {
				byAuthor[int(n.author)]++
			}
		}
	}
	sort.Slice(missing, func(i, j int) bool { return lessID(missing[i], missing[j]) })
	return byAuthor, missing
}

// Len reports the messages held back for a missing parent.
func (m *Merger) Len() int { return m.waiting }

// Flush delivers, through f, every message held back for parents that have
// not arrived, in the same (height, id) order, each with Gap naming the
// parents it comes without; what is ready comes first. After it, a parent
// that arrives late is delivered on its own.
func (m *Merger) Flush(f func(GroupMessage) error) error {
	stable := m.stable
	m.stable = 0
	defer func() { m.stable = stable }()
	for {
		for {
			g, ok := m.Next()
			if !ok {
				break
			}
			if err := f(g); err != nil {
				return err
			}
		}
		if m.waiting == 0 {
			return nil
		}
		// Release the missing parents as if delivered at height 0: the
		// messages waiting only for them become ready.
		var missing []mvds.MessageID
		for id := range m.waiters {
			missing = append(missing, id)
		}
		if len(missing) == 0 {
			return nil // a cycle of ids cannot happen with real hashes
		}
		for _, id := range missing {
			for _, w := range m.waiters[id] {
				w.rareOf().gap = append(w.rareOf().gap, id)
			}
			ghost := &mnode{id: id, children: m.waiters[id]}
			delete(m.waiters, id)
			m.deliver(ghost)
		}
	}
}

func lessID(a, b mvds.MessageID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// readyHeap is a binary min-heap of the ready by (height, id), typed to
// spare container/heap's interface calls.
type readyHeap []*mnode

func (h readyHeap) Len() int { return len(h) }

func (h readyHeap) less(i, j int) bool {
	if h[i].height != h[j].height {
		return h[i].height < h[j].height
	}
	return lessID(h[i].id, h[j].id)
}

func (h *readyHeap) push(n *mnode) {
	*h = append(*h, n)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (h *readyHeap) pop() *mnode {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q[last] = nil
	q = q[:last]
	for i := 0; ; {
		l, r, least := 2*i+1, 2*i+2, i
		if l < len(q) && q.less(l, least) {
			least = l
		}
		if r < len(q) && q.less(r, least) {
			least = r
		}
		if least == i {
			break
		}
		q[i], q[least] = q[least], q[i]
		i = least
	}
	*h = q
	return top
}
