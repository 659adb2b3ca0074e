package mvds

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// ProtocolID is the libp2p protocol rlog speaks MVDS on. A stream carries
// payloads one after another, each framed as an unsigned varint length
// followed by the protobuf Payload (specification field numbers), at most
// MaxWireSize bytes. Either side may open a stream; payloads flow one way
// on it (from the opener).
const ProtocolID = protocol.ID("/rlog/mvds/1.0.0")

// Packet is a payload received from a peer.
type Packet struct {
	From    PeerID
	Payload Payload
}

// P2P is the libp2p transport: a host with the node's key, sending payloads
// on one stream per peer, and handing received ones to Incoming.
type P2P struct {
	Host     host.Host
	incoming chan Packet
	mu       sync.Mutex
	streams  map[peer.ID]*bufio.Writer
	raw      map[peer.ID]network.Stream
	done     chan struct{}
	nums     Numberings
}

// NewP2P starts a libp2p host with key, listening on listen (multiaddrs).
func NewP2P(key crypto.PrivKey, listen ...string) (*P2P, error) {
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings(listen...), libp2p.DisableRelay())
	if err != nil {
		return nil, fmt.Errorf("mvds: libp2p host: %w", err)
	}
	t := &P2P{Host: h, incoming: make(chan Packet, 256), streams: map[peer.ID]*bufio.Writer{}, raw: map[peer.ID]network.Stream{}, done: make(chan struct{})}
	h.SetStreamHandler(ProtocolID, t.handle)
	return t, nil
}

// Incoming delivers received payloads.
func (t *P2P) Incoming() <-chan Packet { return t.incoming }

// ID is the host's peer id, as MVDS names peers.
func (t *P2P) ID() PeerID { return PeerID(t.Host.ID().String()) }

// Addrs are the host's listen addresses with its /p2p/ id.
func (t *P2P) Addrs() []string {
	var out []string
	for _, a := range t.Host.Addrs() {
		out = append(out, a.String()+"/p2p/"+t.Host.ID().String())
	}
	return out
}

// Connect dials a peer at a multiaddr ending in /p2p/ID and returns its id.
func (t *P2P) Connect(ctx context.Context, addr string) (PeerID, error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return "", fmt.Errorf("mvds: peer address %q: %w", addr, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return "", fmt.Errorf("mvds: peer address %q must end in /p2p/ID: %w", addr, err)
	}
	if err := t.Host.Connect(ctx, *info); err != nil {
		return PeerID(info.ID.String()), fmt.Errorf("mvds: connect %s: %w", addr, err)
	}
	return PeerID(info.ID.String()), nil
}

func (t *P2P) handle(s network.Stream) {
	defer s.Close()
	from := PeerID(s.Conn().RemotePeer().String())
	r := bufio.NewReader(s)
	for {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return
		}
		if n > MaxWireSize {
			s.Reset()
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		p, num, err := UnmarshalPayload(buf)
		if err != nil {
			continue // a malformed payload changes nothing; the stream goes on
		}
		t.nums.Heard(from, p, num)
		select {
		case t.incoming <- Packet{From: from, Payload: p}:
		case <-t.done:
			return
		}
	}
}

// Send writes p to peer, opening a stream when there is none. Errors are
// the caller's to retry: MVDS retransmits what was not acknowledged.
func (t *P2P) Send(ctx context.Context, to PeerID, p Payload) error {
	pid, err := peer.Decode(string(to))
	if err != nil {
		return fmt.Errorf("mvds: peer %q: %w", to, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.streams[pid]
	if w == nil {
		s, err := t.Host.NewStream(ctx, pid, ProtocolID)
		if err != nil {
			return fmt.Errorf("mvds: stream to %s: %w", to, err)
		}
		w = bufio.NewWriter(s)
		t.streams[pid], t.raw[pid] = w, s
	}
	wire := p.MarshalNumbering(t.nums.Of(to))
	var hdr [binary.MaxVarintLen64]byte
	_, err = w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(wire)))])
	if err == nil {
		_, err = w.Write(wire)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		t.raw[pid].Reset()
		delete(t.streams, pid)
		delete(t.raw, pid)
		return fmt.Errorf("mvds: send to %s: %w", to, err)
	}
	return nil
}

// Close stops the host.
func (t *P2P) Close() error {
	close(t.done)
	t.mu.Lock()
	for _, s := range t.raw {
		s.Close()
	}
	t.mu.Unlock()
	return errors.Join(t.Host.Close())
}

// Connected reports whether the host has a connection to peer.
func (t *P2P) Connected(p PeerID) bool {
	pid, err := peer.Decode(string(p))
	return err == nil && t.Host.Network().Connectedness(pid) == network.Connected
}
