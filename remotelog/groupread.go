package remotelog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

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
// The ids and heights delivered are kept in the group's store, so a
// message naming one read in an earlier run is not held back.
func CatchUpGroup(ctx context.Context, src Source, g Group, store GroupStore, opts GroupReadOptions, deliver func(GroupMessage) error) (GroupStats, error) {
	names, err := g.MemberNames()
	if err != nil {
		return GroupStats{}, err
	}
	cursors := store.Cursors(g.Name)
	var known []knownID
	if !opts.FromStart {
		if known, err = store.delivered(g.Name); err != nil {
			return GroupStats{}, err
		}
	}
	st := GroupStats{Members: make([]Stats, len(names)), Errors: make([]error, len(names))}
	curs := make([]Cursor, len(names))
	nexts := make([]Cursor, len(names))
	got := make([][]Message, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		if opts.FromStart {
			curs[i] = Cursor{}
		} else if curs[i], err = cursors.Get(name); err != nil {
			return st, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			nexts[i], st.Members[i], err = CatchUp(ctx, src, name, curs[i], opts.ReadOptions, func(m Message) error {
				if m.IsLarge() {
					// Its body file is removed once delivery returns: a
					// group holds messages until their parents come.
					return fmt.Errorf("message %d is large (%d bytes): a group reads small messages only", m.Seq, m.BodySize)
				}
				got[i] = append(got[i], m)
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
	m := NewMerger()
	for _, k := range known {
		m.Known(k.id, k.height)
	}
	for i := range names {
		for _, msg := range got[i] {
			if !groupMember(msg, g) {
				continue // another conversation in the same log
			}
			m.Add(i, msg.ID, parentIDs(msg.Metadata), msg)
		}
	}
	last := make([]*Message, len(names))
	var done []knownID
	emit := func(gm GroupMessage) error {
		if err := deliver(gm); err != nil {
			return err
		}
		st.Messages++
		if gm.Author >= 0 {
			mm := gm.Message
			last[gm.Author] = &mm
		}
		done = append(done, knownID{gm.ID, gm.Height})
		return nil
	}
	var derr error
	for derr == nil {
		gm, ok := m.Next()
		if !ok {
			break
		}
		derr = emit(gm)
	}
	if derr == nil && opts.NoWait {
		derr = m.Flush(emit)
	}
	st.Waiting, st.Missing = m.Waiting()
	if opts.FromStart {
		return st, derr
	}
	// Save: the ids delivered, then each member's cursor: to its end when
	// nothing of it waits, else to its last message delivered.
	if err := store.saveDelivered(g.Name, done); err != nil {
		return st, errors.Join(derr, err)
	}
	for i, name := range names {
		next := nexts[i]
		if st.Errors[i] != nil && next == (Cursor{}) {
			continue
		}
		if st.Waiting[i] > 0 || (derr != nil && len(got[i]) > 0) {
			c := curs[i]
			if l := last[i]; l != nil {
				c.Seq, c.ID = l.Seq, l.ID
			}
			if c.Seq >= next.Seq {
				c = next
			}
			next = c
		}
		if next != curs[i] {
			if err := cursors.Save(name, next); err != nil {
				return st, errors.Join(derr, err)
			}
		}
	}
	return st, derr
}

// groupMember reports whether msg belongs to the conversation of g: its
// MVDS group id is g's.
func groupMember(msg Message, g Group) bool {
	return string(msg.GroupID) == string(g.ID())
}

// parentIDs takes the 32-byte parents of md; others are not message ids.
func parentIDs(md *mvds.Metadata) []mvds.MessageID {
	if md == nil {
		return nil
	}
	out := make([]mvds.MessageID, 0, len(md.Parents))
	for _, p := range md.Parents {
		var id mvds.MessageID
		if len(p) == len(id) {
			copy(id[:], p)
			out = append(out, id)
		}
	}
	return out
}

// Known records a message delivered before (an earlier run): those naming
// it do not wait for it.
func (m *Merger) Known(id mvds.MessageID, height uint64) {
	if m.find(id) != nil {
		return
	}
	n := m.alloc()
	n.msg = GroupMessage{Author: -1, ID: id, Height: height}
	n.delivered = true
	k := idKey(id)
	n.same = m.seen[k]
	m.seen[k] = n
}

type knownID struct {
	id     mvds.MessageID
	height uint64
}

func (s GroupStore) deliveredPath(name string) string {
	return filepath.Join(s.Cursors(name).dir, "delivered")
}

// delivered reads the ids and heights of the group's messages delivered:
// 40-byte records, id then height, appended as they are delivered. A torn
// last record (a crash while appending) is dropped.
func (s GroupStore) delivered(name string) ([]knownID, error) {
	b, err := os.ReadFile(s.deliveredPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("remotelog: read the group's delivered messages: %w", err)
	}
	out := make([]knownID, 0, len(b)/40)
	for ; len(b) >= 40; b = b[40:] {
		var k knownID
		copy(k.id[:], b)
		k.height = binary.LittleEndian.Uint64(b[32:40])
		out = append(out, k)
	}
	return out, nil
}

func (s GroupStore) saveDelivered(name string, ks []knownID) error {
	if len(ks) == 0 {
		return nil
	}
	path := s.deliveredPath(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("remotelog: save the group's delivered messages: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("remotelog: save the group's delivered messages: %w", err)
	}
	// Cut a torn record a crash left, so records stay aligned.
	if fi, err := f.Stat(); err == nil && fi.Size()%40 != 0 {
		if err := f.Truncate(fi.Size() - fi.Size()%40); err != nil {
			f.Close()
			return fmt.Errorf("remotelog: save the group's delivered messages: %w", err)
		}
	}
	buf := make([]byte, 0, 40*len(ks))
	for _, k := range ks {
		buf = append(buf, k.id[:]...)
		buf = binary.LittleEndian.AppendUint64(buf, k.height)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("remotelog: save the group's delivered messages: %w", err)
	}
	return nil
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
}

// FollowGroup reads group g again and again (CatchUpGroup), polling src,
// until ctx ends (it returns nil then) or deliver or a store fails.
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
	wait := opts.MinInterval
	for {
		st, err := CatchUpGroup(ctx, src, g, store, opts.GroupReadOptions, func(gm GroupMessage) error {
			if gm.Author >= 0 && gm.Author < len(g.Members) {
				heads.Observe(g.Members[gm.Author], gm.ID, gm.Parents)
			}
			return deliver(gm)
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if opts.Status != nil {
			opts.Status(st)
		}
		if st.Messages > 0 {
			if opts.Heads != nil {
				opts.Heads(heads.Hex())
			}
			wait = opts.MinInterval
		} else {
			wait = min(2*wait, opts.MaxInterval)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
