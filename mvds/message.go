package mvds

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// MessageID is the 32-byte SHA-256 id of a Message (H1 in the remote log).
type MessageID [32]byte

// String returns the id in lower-case hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// GroupID names an MVDS group (a synchronisation context). The reference uses
// 32 bytes; any length is carried unchanged and hashed as is.
type GroupID []byte

// Message is an MVDS message.
type Message struct {
	GroupID   []byte
	Timestamp int64
	Body      []byte
	// Metadata is carried when a payload had it (field 4 or 6004); it is not
	// part of the id. Nil when absent or empty.
	Metadata *Metadata
}

// Ephemeral reports whether m is ephemeral (4/MVDS-META): sent once, never
// stored, retransmitted, acknowledged, relayed or logged.
func (m Message) Ephemeral() bool { return m.Metadata != nil && m.Metadata.Ephemeral }

// Metadata is the optional MVDS metadata of vacp2p/mvds and 4/MVDS-META.
type Metadata struct {
	Parents   [][]byte
	Ephemeral bool
}

var idPrefix = []byte("MESSAGE_ID")

// ID computes the message id: SHA-256 over "MESSAGE_ID", the group id, the
// timestamp as 8 little-endian bytes and the body, without length prefixes.
func (m Message) ID() MessageID {
	// A small message is hashed from one buffer on the stack: no hash
	// state on the heap, for the one id that every message read or written
	// costs.
	var buf [1024]byte
	if n := len(idPrefix) + len(m.GroupID) + 8 + len(m.Body); n <= len(buf) {
		b := append(append(buf[:0], idPrefix...), m.GroupID...)
		b = binary.LittleEndian.AppendUint64(b, uint64(m.Timestamp))
		return sha256.Sum256(append(b, m.Body...))
	}
	h := IDHash(m.GroupID, m.Timestamp)
	h.Write(m.Body)
	var id MessageID
	h.Sum(id[:0])
	return id
}
