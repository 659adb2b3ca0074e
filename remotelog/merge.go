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
	walk     uint64
}

type mnode struct {
	msg       nodeMsg
	missing   int      // parents not yet delivered
	child     *mnode   // the first waiting for it (most have one or none)
	children  []*mnode // the others waiting for it
	same      *mnode   // the next message whose id starts with the same 8 bytes
	delivered bool
	live      bool   // added by AddLive: not in its author's chain
	prev      *mnode // the previous message of its author's log, when added
	acks      int    // members whose last message is it or follows it (Stable)
	mark      uint64 // the last walk that counted it (Stable)
}

// nodeMsg is what the merge keeps of a message until it is delivered:
// what GroupMessage gives, its Message without the wire form, large
// body reference or body file (a group holds small messages only).
type nodeMsg struct {
	Author  int
	ID      mvds.MessageID
	Parents []mvds.MessageID
	Height  uint64
	Gap     []mvds.MessageID
	seq     uint64
	size    uint64
	ts      int64
	body    []byte
	group   []byte
	md      *mvds.Metadata
}

func (nm *nodeMsg) groupMessage() GroupMessage {
	return GroupMessage{Author: nm.Author, ID: nm.ID, Parents: nm.Parents, Height: nm.Height, Gap: nm.Gap,
		Message: Message{Seq: nm.seq, ID: nm.ID, BodySize: nm.size, Message: mvds.Message{GroupID: nm.group, Timestamp: nm.ts, Body: nm.body, Metadata: nm.md}}}
}

// NewMerger returns an empty merge.
func NewMerger() *Merger {
	return &Merger{seen: map[uint64]*mnode{}, waiters: map[mvds.MessageID][]*mnode{}, known: map[mvds.MessageID]uint64{}}
}

// Add hands the merge the next message of author's log. A message already
// added (the same id from another source) is ignored: Add reports false.
// The merge keeps of msg what GroupMessage.Message gives back: not its
// wire form (Wire), nor a large message's body reference or file.
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
	if m.Has(id) {
		return false
	}
	n := m.alloc()
	m.ackStale = true
	n.msg = nodeMsg{Author: author, ID: id, Parents: parents,
		seq: msg.Seq, size: msg.BodySize, ts: msg.Timestamp, body: msg.Body, group: msg.GroupID, md: msg.Metadata}
	n.live = live
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
	for _, p := range parents {
		if p == id {
			continue // a message cannot wait for itself
		}
		if pn := m.find(p); pn != nil {
			m.dependOn(n, pn)
			continue
		}
		if h, ok := m.known[p]; ok {
			n.msg.Height = max(n.msg.Height, h)
			continue
		}
		if ws := m.waiters[p]; containsNode(ws, n) {
			continue // a parent named twice
		}
		n.missing++
		m.waiters[p] = append(m.waiters[p], n)
	}
	if n.missing == 0 {
		n.msg.Height++
		m.ready.push(n)
	} else {
		m.waiting++
	}
	return true
}

// idKey is the first 8 bytes of an id. Ids are SHA-256 hashes, so
// messages sharing them are rare (a writer can make them, at a cost): they
// are chained, and find compares whole ids.
func idKey(id mvds.MessageID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// find returns the message of id added, nil if none.
func (m *Merger) find(id mvds.MessageID) *mnode {
	for n := m.seen[idKey(id)]; n != nil; n = n.same {
		if n.msg.ID == id {
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
		if done[i].msg.Height != done[j].msg.Height {
			return done[i].msg.Height < done[j].msg.Height
		}
		return lessID(done[i].msg.ID, done[j].msg.ID)
	})
	for _, n := range done {
		n.same = nil
		m.Known(n.msg.ID, n.msg.Height)
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
		n.msg.Height = max(n.msg.Height, p.msg.Height)
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

// alloc takes a node from a slab: one allocation per 1024 messages.
func (m *Merger) alloc() *mnode {
	if len(m.slab) == 0 {
		m.slab = make([]mnode, 1024)
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
		m.walk++
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
			for _, p := range n.msg.Parents {
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
		if m.ready[0].acks < m.stable {
			return GroupMessage{}, false
		}
	}
	n := m.ready.pop()
	m.deliver(n)
	g := n.msg.groupMessage()
	// Keep only what later messages need: the id and height.
	n.msg = nodeMsg{Author: n.msg.Author, ID: n.msg.ID, Height: n.msg.Height}
	n.prev = nil
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
	w.msg.Height = max(w.msg.Height, p.msg.Height)
	if w.missing--; w.missing == 0 {
		w.msg.Height++
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
				byAuthor[n.msg.Author]++
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
				w.msg.Gap = append(w.msg.Gap, id)
			}
			ghost := &mnode{msg: nodeMsg{ID: id}, children: m.waiters[id]}
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
	if h[i].msg.Height != h[j].msg.Height {
		return h[i].msg.Height < h[j].msg.Height
	}
	return lessID(h[i].msg.ID, h[j].msg.ID)
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
