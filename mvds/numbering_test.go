package mvds_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"rlog/mvds"
)

// A peer of the vacp2p lineage writes field numbers 1..4 and reads only
// those: the node answers it in them, on the wire. A raw libp2p host plays
// that peer: it sends a MESSAGE in 1..4 and reads the node's ACK bytes.
func TestNodeAnswersInThePeersNumbering(t *testing.T) {
	node := newHost(t)
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := libp2p.New(libp2p.Identity(sk), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	answers := make(chan []byte, 16)
	other.SetStreamHandler(mvds.ProtocolID, func(s network.Stream) {
		defer s.Close()
		r := bufio.NewReader(s)
		for {
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			answers <- b
		}
	})
	pid := mvds.PeerID(other.ID().String())
	n := mvds.NewNode(mvds.Config{ID: node.ID()})
	n.AddPeer(grp, pid)
	run := mvds.NewRunner(mvds.RunnerConfig{Node: n, Transport: node, Epoch: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go run.Run(ctx, node.Incoming())

	if err := other.Connect(ctx, peerAddr(t, node)); err != nil {
		t.Fatal(err)
	}
	s, err := other.NewStream(ctx, node.Host.ID(), mvds.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	m := msgN(7)
	wire := (&mvds.Payload{Messages: []mvds.Message{m}}).MarshalNumbering(mvds.CompactNumbering)
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(wire))), wire...)); err != nil {
		t.Fatal(err)
	}
	id := m.ID()
	for b := range answers {
		p, num, err := mvds.UnmarshalPayload(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Acks) == 0 {
			continue
		}
		if num != mvds.CompactNumbering || b[0] != 0x0a { // field 1, bytes
			t.Fatalf("the ACK is in the %s numbering (%x), the peer wrote 1..4", num, b[:4])
		}
		if string(p.Acks[0]) != string(id[:]) {
			t.Fatalf("ACK for %x, want %x", p.Acks[0], id)
		}
		return
	}
}

// peerAddr is h's address for a libp2p Connect.
func peerAddr(t *testing.T, h *mvds.P2P) lpeer.AddrInfo {
	t.Helper()
	return lpeer.AddrInfo{ID: h.Host.ID(), Addrs: h.Host.Addrs()}
}
