// Package mvds holds the MVDS message model shared by the remote log and peer
// sync: the Message type, its id (H1) and its protobuf wire encoding.
//
// A Message is identified by
//
//	SHA-256("MESSAGE_ID" || group_id || uint64_le(timestamp) || body)
//
// exactly as the reference implementation computes it. The wire encoding uses
// the field numbers of the 2/MVDS specification (Message 6001..6003, Payload
// 5001..5004); the decoders also accept the 1..4 numbering of vacp2p/mvds
// v0.0.24 and later, and report which one a payload used.
//
//	m := mvds.Message{GroupID: g, Timestamp: time.Now().Unix(), Body: b}
//	wire := m.Marshal()
//	back, numbering, err := mvds.UnmarshalMessage(wire)
//	id := back.ID()
package mvds
