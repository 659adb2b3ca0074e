package mvds

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
)

// Numbering is the set of protobuf field numbers a payload uses.
type Numbering int

const (
	// SpecNumbering is the 2/MVDS specification's numbering (Payload
	// 5001..5004, Message 6001..6004), used by status-im/mvds. Encoders use it.
	SpecNumbering Numbering = iota
	// CompactNumbering is the 1..4 numbering of vacp2p/mvds v0.0.24 and later.
	CompactNumbering
)

func (n Numbering) String() string {
	if n == CompactNumbering {
		return "compact (1..4)"
	}
	return "spec (5001..)"
}

// Numberings remembers the numbering each peer last wrote in, so that a
// transport answers every peer in its own: a node of the vacp2p lineage
// reads only 1..4, one of the status-im lineage only 5001... Until a peer
// is heard from, it gets the specification's. A transport calls Heard for
// every payload it decodes and writes to a peer in Of(peer). The zero
// value is ready; it is safe for concurrent use.
type Numberings struct {
	mu sync.Mutex
	m  map[PeerID]Numbering
}

// Heard notes the numbering of a payload from peer; an empty payload says
// nothing about it.
func (n *Numberings) Heard(peer PeerID, p Payload, num Numbering) {
	if len(p.Acks)+len(p.Offers)+len(p.Requests)+len(p.Messages) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[PeerID]Numbering{}
	}
	n.m[peer] = num
}

// Of is the numbering to write to peer in.
func (n *Numberings) Of(peer PeerID) Numbering {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[peer]
}

// MaxWireSize bounds every decoded payload. A remote-log payload larger than
// this is refused before any parsing.
const MaxWireSize = 64 << 20

// field numbers, indexed by Numbering.
var (
	msgGroup   = [2]protowire.Number{6001, 1}
	msgTime    = [2]protowire.Number{6002, 2}
	msgBody    = [2]protowire.Number{6003, 3}
	msgMeta    = [2]protowire.Number{6004, 4}
	payAcks    = [2]protowire.Number{5001, 1}
	payOffers  = [2]protowire.Number{5002, 2}
	payReqs    = [2]protowire.Number{5003, 3}
	payMsgs    = [2]protowire.Number{5004, 4}
	metaParent = protowire.Number(1)
	metaEphem  = protowire.Number(2)
)

// Marshal encodes m with the specification's field numbers. Zero-valued
// fields are omitted, as proto3 does.
func (m Message) Marshal() []byte {
	return m.appendWire(make([]byte, 0, m.wireSize()), SpecNumbering, false)
}

// AppendMarshal appends Marshal's encoding of m to b.
func (m Message) AppendMarshal(b []byte) []byte { return m.appendWire(b, SpecNumbering, false) }

// MarshalSize is len(m.Marshal()), without making it.
func (m Message) MarshalSize() int { return m.wireSize() }

func (m *Message) wireSize() int {
	n := 0
	if len(m.GroupID) > 0 {
		n += protowire.SizeTag(msgGroup[0]) + protowire.SizeBytes(len(m.GroupID))
	}
	if m.Timestamp != 0 {
		n += protowire.SizeTag(msgTime[0]) + protowire.SizeVarint(uint64(m.Timestamp))
	}
	if len(m.Body) > 0 {
		n += protowire.SizeTag(msgBody[0]) + protowire.SizeBytes(len(m.Body))
	}
	if m.Metadata != nil {
		n += protowire.SizeTag(msgMeta[0]) + protowire.SizeBytes(len(m.Metadata.appendWire(nil)))
	}
	return n
}

// appendStart appends the group id and timestamp, the fields every
// encoding of a message starts with.
func (m *Message) appendStart(b []byte, num Numbering) []byte {
	if len(m.GroupID) > 0 {
		b = protowire.AppendTag(b, msgGroup[num], protowire.BytesType)
		b = protowire.AppendBytes(b, m.GroupID)
	}
	if m.Timestamp != 0 {
		b = protowire.AppendTag(b, msgTime[num], protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Timestamp))
	}
	return b
}

// appendWire appends m's encoding. With alwaysMeta, a message without
// metadata gets an empty metadata field: vacp2p/mvds's interactive relay
// dereferences a missing one and crashes when it has two peers or more.
// Payloads are written so; Marshal (the remote log's bytes) is not.
func (m *Message) appendWire(b []byte, num Numbering, alwaysMeta bool) []byte {
	b = m.appendStart(b, num)
	if len(m.Body) > 0 {
		b = protowire.AppendTag(b, msgBody[num], protowire.BytesType)
		b = protowire.AppendBytes(b, m.Body)
	}
	if m.Metadata != nil || alwaysMeta {
		var md []byte
		if m.Metadata != nil {
			md = m.Metadata.appendWire(nil)
		}
		b = protowire.AppendTag(b, msgMeta[num], protowire.BytesType)
		b = protowire.AppendBytes(b, md)
	}
	return b
}

func (md *Metadata) appendWire(b []byte) []byte {
	for _, p := range md.Parents {
		b = protowire.AppendTag(b, metaParent, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	if md.Ephemeral {
		b = protowire.AppendTag(b, metaEphem, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// UnmarshalMessage decodes a wire-encoded Message in either numbering and
// reports which one it used (the one of its first known field). It reads
// as protobuf readers do, as both reference implementations do: unknown
// fields, fields of the other numbering and fields of a wrong wire type are
// skipped, and of a field that comes twice the last value wins. It refuses
// input that is not protobuf (a bad tag, a truncated field); every error
// wraps ErrMalformed. The returned message does not alias b.
func UnmarshalMessage(b []byte) (Message, Numbering, error) {
	if len(b) > MaxWireSize {
		return Message{}, 0, fmt.Errorf("%w: message is %d bytes, limit %d", ErrMalformed, len(b), MaxWireSize)
	}
	d := decoder{}
	m, err := d.message(b)
	return m, d.numbering(), err
}

// decoder tracks which numbering a payload uses, so a mix is rejected.
type decoder struct {
	seen bool
	num  Numbering
}

func (d *decoder) numbering() Numbering { return d.num }

// pick finds n in the per-numbering tables and returns its index there, or
// false for a field to skip: one it does not know, or one of the other
// numbering than the payload's first known field (a reader of that
// numbering would not know it either).
func (d *decoder) pick(n protowire.Number, tables ...[2]protowire.Number) (int, bool) {
	for i, t := range tables {
		for num := range 2 {
			if t[num] != n {
				continue
			}
			if d.seen && d.num != Numbering(num) {
				return -1, false
			}
			d.seen, d.num = true, Numbering(num)
			return i, true
		}
	}
	return -1, false
}

// fields walks b, calling f for each varint and length-delimited field
// with its raw value (bytes, or the varint); fields of other wire types are
// skipped, as no field rlog reads has one.
func fields(b []byte, f func(n protowire.Number, t protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		n, t, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("%w: bad tag: %v", ErrMalformed, protowire.ParseError(l))
		}
		b = b[l:]
		var v []byte
		var x uint64
		switch t {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, l = protowire.ConsumeVarint(b)
		default:
			l = protowire.ConsumeFieldValue(n, t, b)
		}
		if l < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrMalformed, n, protowire.ParseError(l))
		}
		b = b[l:]
		if t != protowire.BytesType && t != protowire.VarintType {
			continue
		}
		if err := f(n, t, v, x); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) message(b []byte) (Message, error) {
	var m Message
	err := fields(b, func(n protowire.Number, t protowire.Type, v []byte, x uint64) error {
		i, ok := d.pick(n, msgGroup, msgTime, msgBody, msgMeta)
		want := protowire.BytesType
		if i == 1 {
			want = protowire.VarintType
		}
		if !ok || t != want {
			return nil // unknown, or of a type it cannot be: skipped
		}
		// A field that comes again replaces the earlier value.
		switch i {
		case 0:
			m.GroupID = append([]byte(nil), v...)
		case 1:
			m.Timestamp = int64(x)
		case 2:
			m.Body = append([]byte(nil), v...)
		case 3:
			md, err := unmarshalMetadata(v)
			if err != nil {
				return err
			}
			m.Metadata = nil // empty metadata is no metadata: Marshal gives the sender's bytes
			if len(md.Parents) > 0 || md.Ephemeral {
				m.Metadata = &md
			}
		}
		return nil
	})
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

func unmarshalMetadata(b []byte) (Metadata, error) {
	var md Metadata
	err := fields(b, func(n protowire.Number, t protowire.Type, v []byte, x uint64) error {
		switch {
		case n == metaParent && t == protowire.BytesType:
			md.Parents = append(md.Parents, append([]byte(nil), v...))
		case n == metaEphem && t == protowire.VarintType:
			md.Ephemeral = x != 0 // a bool: any non-zero varint; the last one wins
		}
		return nil // anything else is skipped
	})
	if err != nil {
		return Metadata{}, fmt.Errorf("metadata: %w", err)
	}
	return md, nil
}

// Payload is what MVDS peers exchange: acknowledgements, offers and requests
// of message ids, and messages.
type Payload struct {
	Acks     [][]byte
	Offers   [][]byte
	Requests [][]byte
	Messages []Message
}

// Marshal encodes p with the specification's field numbers.
func (p *Payload) Marshal() []byte {
	return p.MarshalNumbering(SpecNumbering)
}

// MarshalNumbering encodes p with the given numbering; use it only to talk to
// peers of the vacp2p 1..4 lineage. Every message carries a metadata field,
// empty when it has none (see appendWire).
func (p *Payload) MarshalNumbering(num Numbering) []byte {
	var b []byte
	for _, list := range []struct {
		n   protowire.Number
		ids [][]byte
	}{{payAcks[num], p.Acks}, {payOffers[num], p.Offers}, {payReqs[num], p.Requests}} {
		for _, id := range list.ids {
			b = protowire.AppendTag(b, list.n, protowire.BytesType)
			b = protowire.AppendBytes(b, id)
		}
	}
	for i := range p.Messages {
		b = protowire.AppendTag(b, payMsgs[num], protowire.BytesType)
		b = protowire.AppendBytes(b, p.Messages[i].appendWire(nil, num, true))
	}
	return b
}

// UnmarshalPayload decodes a Payload in either numbering, under the same rules
// as UnmarshalMessage; nested messages must use the payload's numbering.
func UnmarshalPayload(b []byte) (Payload, Numbering, error) {
	if len(b) > MaxWireSize {
		return Payload{}, 0, fmt.Errorf("%w: payload is %d bytes, limit %d", ErrMalformed, len(b), MaxWireSize)
	}
	var p Payload
	d := decoder{}
	err := fields(b, func(n protowire.Number, t protowire.Type, v []byte, _ uint64) error {
		i, ok := d.pick(n, payAcks, payOffers, payReqs, payMsgs)
		if !ok || t != protowire.BytesType {
			return nil // unknown (status-im's group_offers 5005, say): skipped
		}
		switch i {
		case 0:
			p.Acks = append(p.Acks, append([]byte(nil), v...))
		case 1:
			p.Offers = append(p.Offers, append([]byte(nil), v...))
		case 2:
			p.Requests = append(p.Requests, append([]byte(nil), v...))
		case 3:
			m, err := d.message(v)
			if err != nil {
				return fmt.Errorf("message %d: %w", len(p.Messages), err)
			}
			p.Messages = append(p.Messages, m)
		}
		return nil
	})
	if err != nil {
		return Payload{}, 0, err
	}
	return p, d.numbering(), nil
}
