package mvds_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/mvds"
)

func newHost(t *testing.T) *mvds.P2P {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := mvds.NewP2P(sk, "/ip4/127.0.0.1/tcp/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestP2PRunners: two runners on real libp2p hosts over loopback exchange
// 200 messages each way; each is delivered once, every record clears, and
// the runners persisted state along the way.
func TestP2PRunners(t *testing.T) {
	const n = 200
	ha, hb := newHost(t), newHost(t)
	if _, err := ha.Connect(context.Background(), hb.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type side struct {
		h       *mvds.P2P
		node    *mvds.Node
		run     *mvds.Runner
		mu      sync.Mutex
		got     map[mvds.MessageID]int
		records int
	}
	done := make(chan struct{}, 64)
	mk := func(h, other *mvds.P2P) *side {
		s := &side{h: h, got: map[mvds.MessageID]int{}, records: -1}
		s.node = mvds.NewNode(mvds.Config{ID: h.ID()})
		s.node.AddPeer(grp, other.ID())
		s.run = mvds.NewRunner(mvds.RunnerConfig{Node: s.node, Transport: h, Epoch: 5 * time.Millisecond,
			Save: func(st mvds.State) error {
				s.mu.Lock()
				s.records = len(st.Records)
				s.mu.Unlock()
				nudge(done)
				return nil
			},
			Deliver: func(m mvds.Message) {
				s.mu.Lock()
				s.got[m.ID()]++
				s.mu.Unlock()
				nudge(done)
			}})
		go s.run.Run(ctx, h.Incoming())
		return s
	}
	a, b := mk(ha, hb), mk(hb, ha)
	for i := range n {
		a.run.Do(func(nd *mvds.Node) {
			nd.Send(mvds.Message{GroupID: grp, Timestamp: int64(i), Body: []byte(fmt.Sprint("from a ", i))})
		})
		b.run.Do(func(nd *mvds.Node) {
			nd.Send(mvds.Message{GroupID: grp, Timestamp: int64(i), Body: []byte(fmt.Sprint("from b ", i))})
		})
	}
	settled := func() bool {
		for _, s := range []*side{a, b} {
			s.mu.Lock()
			ok := len(s.got) == n && s.records == 0
			s.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	}
	deadline := time.After(30 * time.Second)
	for !settled() {
		select {
		case <-done:
		case <-deadline:
			t.Fatalf("not settled: a got %d (records %d), b got %d (records %d)", len(a.got), a.records, len(b.got), b.records)
		}
	}
	for _, s := range []*side{a, b} {
		s.mu.Lock()
		for _, c := range s.got {
			if c != 1 {
				t.Fatal("a message was delivered twice")
			}
		}
		s.mu.Unlock()
	}
}

func TestPauseAndInterval(t *testing.T) {
	a, _ := pair(mvds.Batch)
	a.Send(msgN(7))
	a.SetPeer("b", mvds.PeerOptions{Paused: true})
	if p := tick(a, "b"); len(p.Messages) != 0 {
		t.Fatal("sent to a paused peer")
	}
	a.SetPeer("b", mvds.PeerOptions{})
	if p := tick(a, "b"); len(p.Messages) != 1 {
		t.Fatal("nothing sent after resume")
	}
	a.SetPeer("b", mvds.PeerOptions{Interval: 3})
	sent := 0
	for range 9 {
		if p := tick(a, "b"); len(p.Messages) > 0 {
			sent++
			if a.Epoch()%3 != 0 {
				t.Fatalf("with interval 3, sent at epoch %d", a.Epoch())
			}
		}
	}
	if sent < 2 {
		t.Fatalf("with interval 3, sent in %d of 9 epochs", sent)
	}
}

// nudge wakes the waiting test without ever blocking the runner.
func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
