package mvds

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// A large message is one whose body is streamed rather than held in memory
// (a remote log carries bodies of gigabytes). Its wire payload is the same
// protobuf Message with the body as its last field, so it reads as an
// ordinary payload to any protobuf decoder that can hold it.

// maxHeadField bounds the group id and metadata of a streamed message.
const maxHeadField = 64 << 10

// IDHash returns a hash that, once fed a message's body, sums to the id of
// the message of group and timestamp ts (see Message.ID).
func IDHash(group []byte, ts int64) hash.Hash {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(ts))
	h := sha256.New()
	h.Write(idPrefix)
	h.Write(group)
	h.Write(b[:])
	return h
}

// WireHead is the wire payload of m (spec numbering) up to its body, for a
// body of bodyLen bytes: the payload is WireHead followed by the body.
// m.Body is ignored; the metadata, if any, precedes the body.
func WireHead(m Message, bodyLen uint64) []byte {
	b := m.appendStart(nil, SpecNumbering)
	if m.Metadata != nil {
		b = protowire.AppendTag(b, msgMeta[SpecNumbering], protowire.BytesType)
		b = protowire.AppendBytes(b, m.Metadata.appendWire(nil))
	}
	b = protowire.AppendTag(b, msgBody[SpecNumbering], protowire.BytesType)
	return protowire.AppendVarint(b, bodyLen)
}

// WireHeadLen is len(WireHead(m, bodyLen)), without making it.
func WireHeadLen(m Message, bodyLen uint64) uint64 {
	n := 0
	if len(m.GroupID) > 0 {
		n += protowire.SizeTag(msgGroup[SpecNumbering]) + protowire.SizeBytes(len(m.GroupID))
	}
	if m.Timestamp != 0 {
		n += protowire.SizeTag(msgTime[SpecNumbering]) + protowire.SizeVarint(uint64(m.Timestamp))
	}
	if m.Metadata != nil {
		n += protowire.SizeTag(msgMeta[SpecNumbering]) + protowire.SizeBytes(len(m.Metadata.appendWire(nil)))
	}
	return uint64(n+protowire.SizeTag(msgBody[SpecNumbering])) + uint64(protowire.SizeVarint(bodyLen))
}

// ReadWireHead reads the wire payload of a streamed message from r, size
// bytes in all, up to its body, which must be its last field; its other
// fields must be known, of their types, once each. It returns
// the message without its body and the body's length: the body is the
// rest of r. Errors wrap ErrMalformed, but for a failure of r itself
// (other than its end), which is wrapped as it is.
func ReadWireHead(r *bufio.Reader, size uint64) (Message, uint64, error) {
	var m Message
	var have [4]bool
	d := decoder{}
	read := uint64(0)
	hr := &headReader{r: r}
	varint := func() (uint64, error) {
		x, err := binary.ReadUvarint(hr)
		if err != nil {
			return 0, hr.fail(err, "a varint")
		}
		read += uint64(protowire.SizeVarint(x))
		return x, nil
	}
	for read < size {
		tag, err := varint()
		if err != nil {
			return Message{}, 0, err
		}
		n, t := protowire.Number(tag>>3), protowire.Type(tag&7)
		// A streamed message is plain: its known fields once each, of
		// their types, in one numbering.
		i, ok := d.pick(n, msgGroup, msgTime, msgBody, msgMeta)
		if !ok {
			return Message{}, 0, fmt.Errorf("%w: a streamed message has field %d", ErrMalformed, n)
		}
		if have[i] {
			return Message{}, 0, fmt.Errorf("%w: field %d appears twice", ErrMalformed, n)
		}
		have[i] = true
		want := protowire.BytesType
		if i == 1 {
			want = protowire.VarintType
		}
		if t != want {
			return Message{}, 0, fmt.Errorf("%w: field %d has wire type %d, want %d", ErrMalformed, n, t, want)
		}
		x, err := varint()
		if err != nil {
			return Message{}, 0, err
		}
		switch i {
		case 1:
			m.Timestamp = int64(x)
			continue
		case 2:
			if read+x != size {
				return Message{}, 0, fmt.Errorf("%w: a streamed message must end with its body (body of %d bytes at offset %d of %d)", ErrMalformed, x, read, size)
			}
			return m, x, nil
		}
		if x > maxHeadField {
			return Message{}, 0, fmt.Errorf("%w: field %d of %d bytes, limit %d", ErrMalformed, n, x, maxHeadField)
		}
		v := make([]byte, x)
		if _, err := io.ReadFull(hr, v); err != nil {
			return Message{}, 0, hr.fail(err, fmt.Sprintf("field %d", n))
		}
		read += x
		if i == 0 {
			m.GroupID = v
			continue
		}
		md, err := unmarshalMetadata(v)
		if err != nil {
			return Message{}, 0, err
		}
		m.Metadata = &md
	}
	return Message{}, 0, fmt.Errorf("%w: a streamed message has no body", ErrMalformed)
}

// headReader reads a streamed message's head from r, keeping the first
// error r gave other than its end: a source that fails (a block missing, a
// file cut short, a connection lost) is not a malformed message.
type headReader struct {
	r   *bufio.Reader
	err error
}

func (h *headReader) ReadByte() (byte, error) {
	c, err := h.r.ReadByte()
	h.keep(err)
	return c, err
}

func (h *headReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.keep(err)
	return n, err
}

func (h *headReader) keep(err error) {
	if err != nil && err != io.EOF && h.err == nil {
		h.err = err
	}
}

// fail is the error for err, met reading what.
func (h *headReader) fail(err error, what string) error {
	if h.err != nil {
		return fmt.Errorf("read a streamed message's head: %w", h.err)
	}
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
}
