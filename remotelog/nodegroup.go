package remotelog

import (
	"context"
	"fmt"

	"rlog/mvds"
)

// liveQueue is how many messages from peers a group's reader may have to
// take at once; beyond, a message is left for its member's log to give.
const liveQueue = 1024

// liveGroup gives the reader of group g the messages of g that come over
// MVDS (opts.Live), when the node syncs g's MVDS group; stop ends it.
func (n *Node) liveGroup(g Group, opts *FollowGroupOptions) (stop func()) {
	if n.sync == nil || string(n.sync.group) != string(g.ID()) || opts.Live != nil {
		return func() {}
	}
	ch := make(chan LiveMessage, liveQueue)
	opts.Live = ch
	return n.sync.tap(func(from mvds.PeerID, m mvds.Message) {
		if m.Ephemeral() {
			return
		}
		select {
		case ch <- LiveMessage{From: from, Message: m}:
		default: // the reader is behind: the member's log gives it
		}
	})
}

// AppendMeta appends bodies to group naming md's parents (a group
// conversation's heads: see Group); they are durable when it returns, and
// sent to sync peers. When the repo's own log is private (rlog init
// --private), the bodies are sealed under its newest read key, read from
// the repo at each call so that a rekey takes effect at once; the ids are
// over the sealed bodies.
func (n *Node) AppendMeta(ctx context.Context, group []byte, md *mvds.Metadata, bodies [][]byte) ([]Appended, error) {
	if group == nil {
		group = n.repo.DefaultGroup()
	}
	k, err := LoadKeyring(n.repo.Dir, n.repo.Name())
	if err != nil {
		return nil, fmt.Errorf("remotelog: node: append: %w", err)
	}
	if bodies, err = k.SealAll(group, bodies); err != nil {
		return nil, fmt.Errorf("remotelog: node: append: %w", err)
	}
	n.srv.mu.Lock()
	defer n.srv.mu.Unlock()
	out, err := n.w.AppendMeta(ctx, group, md, bodies)
	if err == nil && n.srv.OnAppend != nil {
		n.srv.OnAppend(out)
	}
	return out, err
}
