package remotelog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/mvds"
)

// GroupReadOptions tune a group catch-up.
type GroupReadOptions struct {
	ReadOptions
	// NoWait delivers the messages whose parents no member's log gave,
	// with GroupMessage.Gap naming them, instead of holding them back.
	NoWait bool
	// FromStart reads every member's log from its first message and keeps
	// no cursor (rlog log --group): what the group's cursors say is left
	// as it is.
	FromStart bool
	// Window is how many of the ids delivered lately are kept (default
	// DefaultGroupWindow), in memory and in the group's store: a message
	// naming a parent delivered longer ago waits for it as for a parent
	// never read (with NoWait, it comes with the gap marked).
	Window int
	// MembersAtOnce bounds the members' logs read at once (default
	// DefaultGroupMembersAtOnce). Unless ReadOptions sets it, the members
	// read at once share one log's memory budget.
	MembersAtOnce int
	// Requests bounds the requests in flight to the source for all
	// members together (default DefaultGroupRequests).
	Requests int
	// Stable delivers a message only once every member has written after
	// it (see Merger.Stable): every reader then delivers the same total
	// order whenever it reads, at the price of waiting for every member.
	Stable bool
	// Keep, when set, also keeps each member's log read in it, as
	// CatchUpKeeping does: its blocks, then its record.
	Keep *KeepTarget
}

// GroupStats reports a group catch-up.
type GroupStats struct {
	Messages uint64           // delivered
	Members  []Stats          // each member's catch-up, in the group's order
	Errors   []error          // each member's failure, nil when read
	Waiting  map[int]int      // messages held back, by member
	Missing  []mvds.MessageID // the parents they wait for
}

// CatchUpGroup reads every member's log of g from src, in parallel, each
// from its cursor in cursors, merges them (see Merger) and delivers each
// message once, after its parents. A member whose log cannot be read now,
// or has forked or rolled back (ErrFork, ErrRollback: never merged past),
// is reported in Errors; the others are delivered, holding back only what
// waits for a message not read. A member's cursor advances to the last of
// its messages delivered, so what is held back is read again next time.
// The ids and heights delivered lately are kept in the group's store (see
// GroupReadOptions.Window), so a message naming one read in an earlier
// run is not held back.
func CatchUpGroup(ctx context.Context, src Source, g Group, store GroupStore, opts GroupReadOptions, deliver func(GroupMessage) error) (GroupStats, error) {
	r, err := NewGroupReader(g, store, opts, deliver)
	if err != nil {
		return GroupStats{}, err
	}
	return r.Read(ctx, src)
}

// GroupReader reads a group conversation as one stream: its members' logs
// (Read, again and again) and the messages that come another way, over
// MVDS from peers online now (AddLive), merged (Merger), each message
// delivered once whichever way it came first. It keeps, in the group's
// store, each member's cursor and the ids delivered lately. It is not safe
// for concurrent use: one goroutine reads and adds.
type GroupReader struct {
	g       Group
	gid     []byte // g's MVDS group id
	names   []ipns.Name
	peers   map[mvds.PeerID]int // a member's libp2p peer id (its log's key)
	store   GroupStore
	cursors CursorStore
	opts    GroupReadOptions
	deliver func(GroupMessage) error

	m     *Merger
	read  []Cursor   // how far each member's log was read
	saved []Cursor   // each member's cursor as saved
	queue [][]logPos // each member's messages read, from the first not delivered, in log order (none with FromStart)
	fresh []knownID  // delivered, not saved yet
	ids   *deliveredFile
}

// logPos is a message's place in its author's log: its sequence number
// and its node in the merge (16 bytes a message held).
type logPos struct {
	seq uint64
	n   *mnode
}

// DefaultGroupWindow is how many of the ids delivered lately a group's
// reader keeps (GroupReadOptions.Window): about 2.6 MB on disk.
const DefaultGroupWindow = 1 << 16

// DefaultGroupMembersAtOnce is how many members' logs a group's reader
// reads at once (GroupReadOptions.MembersAtOnce).
const DefaultGroupMembersAtOnce = 64

// DefaultGroupRequests is how many requests a group's reader has in
// flight at most (GroupReadOptions.Requests).
const DefaultGroupRequests = 256

// sharedSource bounds the requests in flight of the members read at once.
type sharedSource struct {
	Source
	sem chan struct{}
}

// acquire waits for a request's turn; release ends it.
func (s *sharedSource) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *sharedSource) release() { <-s.sem }

func (s *sharedSource) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.release()
	return s.Source.Get(ctx, c)
}

func (s *sharedSource) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.release()
	return s.Source.Resolve(ctx, name)
}

func (s *sharedSource) Local() bool { return isLocal(s.Source) }

// NewGroupReader prepares to read group g, delivering to deliver, from the
// cursors and ids delivered kept in store (none with opts.FromStart).
func NewGroupReader(g Group, store GroupStore, opts GroupReadOptions, deliver func(GroupMessage) error) (*GroupReader, error) {
	names, err := g.MemberNames()
	if err != nil {
		return nil, err
	}
	if opts.Window <= 0 {
		opts.Window = DefaultGroupWindow
	}
	if opts.MembersAtOnce <= 0 {
		opts.MembersAtOnce = DefaultGroupMembersAtOnce
	}
	r := &GroupReader{
		g: g, gid: g.ID(), names: names, peers: map[mvds.PeerID]int{}, store: store, cursors: store.Cursors(g.Name),
		opts: opts, deliver: deliver, m: NewMerger(),
		read: make([]Cursor, len(names)), saved: make([]Cursor, len(names)), queue: make([][]logPos, len(names)),
	}
	for i, n := range names {
		r.peers[mvds.PeerID(n.Peer().String())] = i
	}
	if opts.Stable {
		r.m.Stable(len(names))
	}
	if opts.FromStart {
		return r, nil
	}
	r.ids = &deliveredFile{path: store.deliveredPath(g.Name), window: opts.Window}
	known, err := r.ids.load()
	if err != nil {
		return nil, err
	}
	for _, k := range known {
		r.m.Known(k.id, k.height)
	}
	for i, name := range names {
		if r.saved[i], err = r.cursors.Get(name); err != nil {
			return nil, err
		}
		r.read[i] = r.saved[i]
	}
	return r, nil
}

// Member is the index of the member whose log's key is peer, -1 if none.
func (r *GroupReader) Member(peer mvds.PeerID) int {
	if i, ok := r.peers[peer]; ok {
		return i
	}
	return -1
}

// Read reads every member's log from where it was read to (in parallel),
// merges what is new, delivers what can be, and saves the cursors and the
// ids delivered. A member that cannot be read is reported in the stats'
// Errors and read again next time.
func (r *GroupReader) Read(ctx context.Context, src Source) (GroupStats, error) {
	n := len(r.names)
	st := GroupStats{Members: make([]Stats, n), Errors: make([]error, n)}
	ro := r.opts.ReadOptions
	// Budgets: members read at once share the memory of one log, and
	// their requests in flight are bounded together.
	at := max(min(n, r.opts.MembersAtOnce), 1)
	if ro.MemoryBudget <= 0 {
		budget := DefaultMemoryBudget
		if isLocal(src) {
			budget = LocalMemoryBudget
		}
		ro.MemoryBudget = max(budget/at, 256<<10)
	}
	src = &sharedSource{Source: src, sem: make(chan struct{}, cmp.Or(r.opts.Requests, DefaultGroupRequests))}
	nexts := make([]Cursor, n)
	sem := make(chan struct{}, at)
	gid := r.gid
	var mu sync.Mutex // the merge takes each member's messages as they come
	var wg sync.WaitGroup
	for i, name := range r.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			catchUp := CatchUp
			if k := r.opts.Keep; k != nil {
				catchUp = func(ctx context.Context, src Source, name ipns.Name, cur Cursor, opts ReadOptions, deliver func(Message) error) (Cursor, Stats, error) {
					return CatchUpKeeping(ctx, src, name, cur, *k, opts, deliver)
				}
			}
			var err error
			var pbuf []mvds.MessageID // the parents of the message read, reused
			nexts[i], st.Members[i], err = catchUp(ctx, src, name, r.read[i], ro, func(m Message) error {
				if string(m.GroupID) != string(gid) {
					return nil // another conversation in the same log
				}
				if m.IsLarge() {
					// Its body file is removed once delivery returns: a
					// group holds messages until their parents come.
					return fmt.Errorf("message %d is large (%d bytes): a group reads small messages only", m.Seq, m.BodySize)
				}
				// Held until delivered: only what delivery needs (the
				// wire form may hold its whole page; Parents has the
				// metadata's parents).
				pbuf = appendParentIDs(pbuf[:0], m.Metadata)
				m.Wire, m.Metadata, m.GroupID = nil, nil, gid
				mu.Lock()
				defer mu.Unlock()
				// The merge copies the body and parents into its arena.
				n := r.m.addNode(i, m.ID, pbuf, m, false)
				if r.opts.FromStart {
					return nil // no cursor to keep
				}
				r.enqueue(i, m.Seq, m.ID, n)
				return nil
			})
			if err != nil {
				st.Errors[i] = fmt.Errorf("member %s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return st, err
	}
	for i := range r.names {
		if nexts[i] != (Cursor{}) {
			r.read[i] = nexts[i]
		}
	}
	// Delivered once every member was read: the order is then that of the
	// whole set, however the members' messages interleaved.
	return st, r.drain(&st)
}

// enqueue notes that member i's log has at seq the message id, added to
// the merge as n (nil: added or delivered before).
func (r *GroupReader) enqueue(i int, seq uint64, id mvds.MessageID, n *mnode) {
	if n == nil {
		n = r.m.find(id) // a copy from another member: delivered with it
	}
	if n == nil { // delivered and forgotten, or in an earlier run
		n = &mnode{id: id, delivered: true}
	}
	r.queue[i] = append(r.queue[i], logPos{seq, n})
}

// AddLive merges msg, which came from peer over MVDS (or from peer's log
// read by a sync node), and delivers what can be: it comes after its
// parents, and is delivered once, also when its author's log gives it
// later. A message of another group, or ephemeral, is ignored.
func (r *GroupReader) AddLive(peer mvds.PeerID, msg mvds.Message) (GroupStats, error) {
	var st GroupStats
	if msg.Ephemeral() || string(msg.GroupID) != string(r.gid) {
		return st, nil
	}
	id := msg.ID()
	parents := appendParentIDs(nil, msg.Metadata)
	msg.Metadata, msg.GroupID = nil, r.gid
	r.m.AddLive(r.Member(peer), id, parents, Message{ID: id, BodySize: uint64(len(msg.Body)), Message: msg})
	return st, r.drain(&st)
}

// drain delivers what is ready (with NoWait, also what waits), then saves
// the ids delivered and the cursors, and forgets what it needs not keep.
func (r *GroupReader) drain(st *GroupStats) error {
	emit := func(gm GroupMessage) error {
		if err := r.deliver(gm); err != nil {
			return err
		}
		st.Messages++
		r.fresh = append(r.fresh, knownID{gm.ID, gm.Height})
		return nil
	}
	var derr error
	for derr == nil {
		gm, ok := r.m.Next()
		if !ok {
			break
		}
		derr = emit(gm)
	}
	if derr == nil && r.opts.NoWait {
		derr = r.m.Flush(emit)
	}
	st.Waiting, st.Missing = r.m.Waiting()
	if r.opts.FromStart {
		return derr
	}
	if err := r.save(); err != nil {
		return errors.Join(derr, err)
	}
	r.m.Compact(r.opts.Window)
	return derr
}

// save writes the ids delivered, then each member's cursor: to the last
// message of its log before the first not delivered (what waits is read
// again by the next reader), or to the end read.
func (r *GroupReader) save() error {
	if err := r.ids.append(r.fresh); err != nil {
		return err
	}
	r.fresh = r.fresh[:0]
	for i, name := range r.names {
		q := r.queue[i]
		c := r.saved[i]
		k := 0
		for ; k < len(q) && q[k].n.delivered; k++ {
			c.Seq, c.ID = q[k].seq, q[k].n.id
		}
		rest := copy(q, q[k:])
		clear(q[rest:]) // no stale pointer keeps a node delivered in memory
		r.queue[i] = q[:rest]
		if len(r.queue[i]) == 0 {
			c = r.read[i]
		}
		if c != r.saved[i] {
			if err := r.cursors.Save(name, c); err != nil {
				return err
			}
			r.saved[i] = c
		}
	}
	return nil
}

// appendParentIDs appends the 32-byte parents of md to out; others are
// not message ids.
func appendParentIDs(out []mvds.MessageID, md *mvds.Metadata) []mvds.MessageID {
	if md == nil {
		return out
	}
	for _, p := range md.Parents {
		var id mvds.MessageID
		if len(p) == len(id) {
			copy(id[:], p)
			out = append(out, id)
		}
	}
	return out
}

type knownID struct {
	id     mvds.MessageID
	height uint64
}

func (s GroupStore) deliveredPath(name string) string {
	return filepath.Join(s.Cursors(name).dir, "delivered")
}

// delivered reads the ids and heights of the group's messages delivered
// lately (see deliveredFile).
func (s GroupStore) delivered(name string) ([]knownID, error) {
	return (&deliveredFile{path: s.deliveredPath(name), window: DefaultGroupWindow}).load()
}

// FollowGroupOptions tune FollowGroup.
type FollowGroupOptions struct {
	GroupReadOptions
	// MinInterval is the time between looks while messages come (default
	// 1 s); it doubles while nothing does, up to MaxInterval (default 1 min).
	MinInterval, MaxInterval time.Duration
	// Status, when set, hears what each look did.
	Status func(GroupStats)
	// Heads, when set, is told the group's heads after a look that
	// delivered messages, for the caller to keep (Group.Heads).
	Heads func([]string)
	// Live, when set, gives the messages of the group that come over MVDS
	// from peers online now (LiveMessage.From is the peer that sent it):
	// they join the stream, each delivered once, also when the member's log
	// gives it later. A node that syncs the group sets it (SubscribeGroup).
	Live <-chan LiveMessage
}

// LiveMessage is a message that came over MVDS, and the peer it came from.
type LiveMessage struct {
	From    mvds.PeerID
	Message mvds.Message
}

// FollowGroup reads group g again and again (GroupReader), polling src,
// and merges the messages that come on opts.Live between looks, until ctx
// ends (it returns nil then) or deliver or a store fails.
func FollowGroup(ctx context.Context, src Source, g Group, store GroupStore, opts FollowGroupOptions, deliver func(GroupMessage) error) error {
	if opts.MinInterval <= 0 {
		opts.MinInterval = time.Second
	}
	if opts.MaxInterval < opts.MinInterval {
		opts.MaxInterval = max(time.Minute, opts.MinInterval)
	}
	saved, err := g.HeadIDs()
	if err != nil {
		return err
	}
	heads := NewHeads(saved)
	r, err := NewGroupReader(g, store, opts.GroupReadOptions, func(gm GroupMessage) error {
		if gm.Author >= 0 && gm.Author < len(g.Members) {
			heads.Observe(g.Members[gm.Author], gm.ID, gm.Parents)
		}
		return deliver(gm)
	})
	if err != nil {
		return err
	}
	wait := opts.MinInterval
	for {
		st, err := r.Read(ctx, src)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if opts.Status != nil {
			opts.Status(st)
		}
		if st.Messages > 0 && opts.Heads != nil {
			opts.Heads(heads.Hex())
		}
		if st.Messages > 0 {
			wait = opts.MinInterval
		} else {
			wait = min(2*wait, opts.MaxInterval)
		}
		t := time.NewTimer(wait)
	between:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case lm := <-opts.Live:
				st, err := r.AddLive(lm.From, lm.Message)
				if err != nil {
					t.Stop()
					return err
				}
				if st.Messages > 0 && opts.Heads != nil {
					opts.Heads(heads.Hex())
				}
			case <-t.C:
				break between
			}
		}
	}
}
