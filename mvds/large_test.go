package mvds

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestWireHeadIsMarshalsPrefix(t *testing.T) {
	body := bytes.Repeat([]byte("large "), 50_000)
	m := Message{GroupID: bytes.Repeat([]byte{7}, 32), Timestamp: 1_700_000_000, Body: body}
	head := WireHead(m, uint64(len(body)))
	wire := append(head, body...)
	if !bytes.Equal(wire, m.Marshal()) {
		t.Fatal("WireHead + body differs from Marshal for a message without metadata")
	}
	h := IDHash(m.GroupID, m.Timestamp)
	h.Write(body)
	if id := m.ID(); !bytes.Equal(h.Sum(nil), id[:]) {
		t.Fatal("IDHash + body differs from ID")
	}
	got, n, err := ReadWireHead(bufio.NewReader(bytes.NewReader(wire)), uint64(len(wire)))
	if err != nil || n != uint64(len(body)) || got.Timestamp != m.Timestamp || !bytes.Equal(got.GroupID, m.GroupID) {
		t.Fatalf("ReadWireHead: %+v %d %v", got, n, err)
	}
}

func TestWireHeadWithMetadataDecodes(t *testing.T) {
	m := Message{GroupID: []byte("g"), Timestamp: 5, Metadata: &Metadata{Parents: [][]byte{bytes.Repeat([]byte{1}, 32)}}}
	body := []byte("the body")
	wire := append(WireHead(m, uint64(len(body))), body...)
	dec, _, err := UnmarshalMessage(wire)
	if err != nil || !bytes.Equal(dec.Body, body) || dec.Metadata == nil || len(dec.Metadata.Parents) != 1 {
		t.Fatalf("decode: %+v %v", dec, err)
	}
	got, n, err := ReadWireHead(bufio.NewReader(bytes.NewReader(wire)), uint64(len(wire)))
	if err != nil || n != uint64(len(body)) || got.Metadata == nil {
		t.Fatalf("ReadWireHead: %+v %d %v", got, n, err)
	}
}

func TestReadWireHeadRefusesBodyNotLast(t *testing.T) {
	m := Message{GroupID: []byte("g"), Timestamp: 5, Body: []byte("b"), Metadata: &Metadata{Ephemeral: true}}
	wire := m.Marshal() // metadata after the body
	_, _, err := ReadWireHead(bufio.NewReader(bytes.NewReader(wire)), uint64(len(wire)))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed", err)
	}
}

// A head cut short is malformed; a source that fails while the head is read
// is that failure, not a malformed message.
func TestReadWireHeadCutOrFailing(t *testing.T) {
	m := Message{GroupID: bytes.Repeat([]byte{7}, 32), Timestamp: 5}
	wire := append(WireHead(m, 100), make([]byte, 100)...)
	for cut := range 35 { // within the group id's field
		_, _, err := ReadWireHead(bufio.NewReader(bytes.NewReader(wire[:cut])), uint64(len(wire)))
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut at %d: err %v, want ErrMalformed", cut, err)
		}
		lost := errors.New("connection lost")
		r := io.MultiReader(bytes.NewReader(wire[:cut]), iotest.ErrReader(lost))
		_, _, err = ReadWireHead(bufio.NewReader(r), uint64(len(wire)))
		if !errors.Is(err, lost) || errors.Is(err, ErrMalformed) {
			t.Fatalf("source failing at %d: err %v, want the source's error, not ErrMalformed", cut, err)
		}
	}
}

func FuzzReadWireHead(f *testing.F) {
	body := []byte("body")
	f.Add(append(WireHead(Message{GroupID: []byte("g"), Timestamp: 1}, 4), body...))
	f.Add(Message{GroupID: []byte("g"), Timestamp: 5, Body: []byte("b"), Metadata: &Metadata{Ephemeral: true}}.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := ReadWireHead(bufio.NewReader(bytes.NewReader(b)), uint64(len(b)))
		if err != nil {
			return
		}
		// What it accepts is a message ending with its body, which the
		// in-memory decoder reads the same.
		dec, _, err := UnmarshalMessage(b)
		if err != nil {
			t.Fatalf("streamed head accepted what UnmarshalMessage refuses: %v", err)
		}
		if uint64(len(dec.Body)) != n || dec.Timestamp != m.Timestamp || !bytes.Equal(dec.GroupID, m.GroupID) {
			t.Fatalf("streamed head %+v/%d differs from %+v", m, n, dec)
		}
	})
}

// TestIDAcrossBufferSize: a message's id is the same whether it is hashed
// from one buffer (small messages) or streamed through IDHash (the rest):
// bodies from empty to past the buffer, with and without a group.
func TestIDAcrossBufferSize(t *testing.T) {
	for _, group := range [][]byte{nil, bytes.Repeat([]byte{7}, 32)} {
		for n := 0; n <= 1100; n += 7 {
			m := Message{GroupID: group, Timestamp: 1_700_000_000 + int64(n), Body: bytes.Repeat([]byte{byte(n)}, n)}
			h := IDHash(m.GroupID, m.Timestamp)
			h.Write(m.Body)
			var want MessageID
			h.Sum(want[:0])
			if got := m.ID(); got != want {
				t.Fatalf("group of %d bytes, body of %d: id %s, streamed %s", len(group), n, got, want)
			}
		}
	}
}

// TestSizesWithoutEncoding: WireHeadLen and MarshalSize give the lengths
// of WireHead and Marshal, and AppendMarshal appends Marshal's bytes, for
// messages with and without each field.
func TestSizesWithoutEncoding(t *testing.T) {
	parent := bytes.Repeat([]byte{1}, 32)
	for _, m := range []Message{
		{},
		{GroupID: []byte("g"), Timestamp: 5},
		{GroupID: bytes.Repeat([]byte{7}, 32), Timestamp: 1_700_000_000, Body: bytes.Repeat([]byte("b"), 200)},
		{Timestamp: 1, Body: bytes.Repeat([]byte("b"), 70_000), Metadata: &Metadata{Parents: [][]byte{parent, parent}}},
		{GroupID: []byte("g"), Metadata: &Metadata{}},
	} {
		for _, n := range []uint64{0, 1, 127, 128, 1 << 20} {
			if got, want := WireHeadLen(m, n), uint64(len(WireHead(m, n))); got != want {
				t.Errorf("WireHeadLen(%+v, %d) = %d, WireHead is %d bytes", m, n, got, want)
			}
		}
		wire := m.Marshal()
		if m.MarshalSize() != len(wire) {
			t.Errorf("MarshalSize %d, Marshal %d bytes", m.MarshalSize(), len(wire))
		}
		if got := m.AppendMarshal([]byte("x")); !bytes.Equal(got, append([]byte("x"), wire...)) {
			t.Errorf("AppendMarshal differs from Marshal")
		}
	}
}
