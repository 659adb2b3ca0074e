package mvds

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// State is everything a node must keep across a restart: its epoch, the
// group members, the messages it has and its retransmission records. A
// runner saves it after handling each Ready and restores it with
// RestoreNode, so a restarted node resumes retransmission where it was,
// loses no message and delivers none twice.
type State struct {
	Epoch    int64                  `json:"epoch"`
	Peers    map[string][]PeerID    `json:"peers"` // group (bytes as string) -> members
	Messages []Message              `json:"messages"`
	Records  []Record               `json:"records"`
	Acks     map[PeerID][]MessageID `json:"acks,omitempty"`
	RTT      map[PeerID]RTT         `json:"rtt,omitempty"`
}

// State returns the node's state, to persist.
func (n *Node) State() State {
	st := State{Epoch: n.epoch, Peers: map[string][]PeerID{}, Records: n.Records(), Acks: map[PeerID][]MessageID{}}
	for g, ps := range n.peers {
		st.Peers[hex.EncodeToString([]byte(g))] = slices.Sorted(maps.Keys(ps))
	}
	for _, id := range slices.SortedFunc(maps.Keys(n.store), func(a, b MessageID) int { return cmpStr(string(a[:]), string(b[:])) }) {
		st.Messages = append(st.Messages, n.store[id])
	}
	for p, ids := range n.acks {
		st.Acks[p] = slices.Clone(ids)
	}
	if len(n.rtt) > 0 {
		st.RTT = map[PeerID]RTT{}
		for p, r := range n.rtt {
			st.RTT[p] = *r
		}
	}
	return st
}

// RestoreNode builds a node from a saved state.
func RestoreNode(cfg Config, st State) (*Node, error) {
	n := NewNode(cfg)
	n.epoch = st.Epoch
	for gh, ps := range st.Peers {
		gb, err := hex.DecodeString(gh)
		if err != nil {
			return nil, fmt.Errorf("mvds: restore: group %q: %w", gh, err)
		}
		g := string(gb)
		n.peers[g] = map[PeerID]bool{}
		for _, p := range ps {
			n.peers[g][p] = true
		}
	}
	for _, m := range st.Messages {
		n.store[m.ID()] = m
	}
	for _, r := range st.Records {
		if r.Type == RecordMessage || r.Type == RecordOffer {
			if _, ok := n.store[r.ID]; !ok {
				return nil, fmt.Errorf("mvds: restore: record for message %s, which the state does not hold", r.ID)
			}
		}
		rc := r
		n.recs[recKey{r.Peer, r.ID, r.Type}] = &rc
	}
	for p, ids := range st.Acks {
		n.acks[p] = slices.Clone(ids)
	}
	for p, r := range st.RTT {
		rc := r
		n.rtt[p] = &rc
	}
	return n, nil
}

// MarshalJSON writes a MessageID as hex.
func (id MessageID) MarshalJSON() ([]byte, error) { return json.Marshal(id.String()) }

// UnmarshalJSON reads a MessageID written as hex.
func (id *MessageID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return fmt.Errorf("mvds: message id %q is not 64 hex digits", s)
	}
	copy(id[:], b)
	return nil
}
