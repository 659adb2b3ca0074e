package mvds_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"rlog/internal/testdata"
	"rlog/mvds"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestMessageIDMatchesReference(t *testing.T) {
	for _, row := range testdata.Rows(t, "mvds/ids.txt") {
		ts, err := strconv.ParseInt(row[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		m := mvds.Message{GroupID: unhex(t, row[0]), Timestamp: ts, Body: []byte(row[2])}
		if got := m.ID().String(); got != row[3] {
			t.Errorf("id(%s, %d, %q) = %s, want %s", row[0], ts, row[2], got, row[3])
		}
	}
}

func vectorMessage(t testing.TB) mvds.Message {
	return mvds.Message{GroupID: unhex(t, "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"), Timestamp: 1700000000, Body: []byte("hello")}
}

func TestPayloadWireMatchesReference(t *testing.T) {
	p := mvds.Payload{Acks: [][]byte{{0xaa}}, Messages: []mvds.Message{vectorMessage(t)}}
	for _, row := range testdata.Rows(t, "mvds/wire.txt") {
		want := unhex(t, row[1])
		name, rlogWrites := strings.CutSuffix(row[0], "+meta")
		num := mvds.SpecNumbering
		if name == "compact" {
			num = mvds.CompactNumbering
		}
		// rlog writes the +meta rows; it reads them all.
		if got := p.MarshalNumbering(num); rlogWrites && !bytes.Equal(got, want) {
			t.Errorf("%s encoding:\n got %x\nwant %x", row[0], got, want)
		}
		back, gotNum, err := mvds.UnmarshalPayload(want)
		if err != nil {
			t.Fatalf("decode %s vector: %v", row[0], err)
		}
		if gotNum != num {
			t.Errorf("decode %s vector: numbering %v", row[0], gotNum)
		}
		if len(back.Acks) != 1 || !bytes.Equal(back.Acks[0], []byte{0xaa}) || len(back.Messages) != 1 {
			t.Fatalf("decode %s vector: got %+v", row[0], back)
		}
		if back.Messages[0].ID() != vectorMessage(t).ID() {
			t.Errorf("decode %s vector: message id changed", row[0])
		}
		// An empty metadata field is no metadata: the message's own bytes
		// (the remote log's) are the sender's.
		if !bytes.Equal(back.Messages[0].Marshal(), vectorMessage(t).Marshal()) {
			t.Errorf("decode %s vector: Marshal gives %x", row[0], back.Messages[0].Marshal())
		}
	}
}

func TestMessageRoundTripBothNumberings(t *testing.T) {
	m := vectorMessage(t)
	m.Metadata = &mvds.Metadata{Parents: [][]byte{{0xbb}}, Ephemeral: true}
	wire := m.Marshal()
	back, num, err := mvds.UnmarshalMessage(wire)
	if err != nil || num != mvds.SpecNumbering {
		t.Fatalf("decode: %v %v", num, err)
	}
	if back.ID() != m.ID() || !back.Metadata.Ephemeral || !bytes.Equal(back.Metadata.Parents[0], []byte{0xbb}) {
		t.Fatalf("round trip lost data: %+v", back)
	}
	// The compact numbering as vacp2p master encodes it, with metadata.
	compact := (&mvds.Payload{Messages: []mvds.Message{m}}).MarshalNumbering(mvds.CompactNumbering)
	p, num, err := mvds.UnmarshalPayload(compact)
	if err != nil || num != mvds.CompactNumbering || p.Messages[0].ID() != m.ID() {
		t.Fatalf("compact round trip: %v %v", num, err)
	}
	if !bytes.HasSuffix(compact, unhex(t, "1a0568656c6c6f22050a01bb1001")) {
		t.Errorf("compact metadata encoding differs from vacp2p: %x", compact)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good := vectorMessage(t).Marshal()
	cases := map[string][]byte{
		"truncated":         good[:len(good)-2],
		"bad tag":           {0x80},
		"group length lie":  {0x8a, 0xf7, 0x02, 0x7f, 0x01},
		"truncated fixed32": {0x95, 0xf7, 0x02, 0, 0},
	}
	for name, b := range cases {
		if _, _, err := mvds.UnmarshalMessage(b); !errors.Is(err, mvds.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

// Decoding follows protobuf, as both reference implementations do: unknown
// fields, the other numbering's fields and fields of a wrong wire type are
// skipped, and the last value of a field that comes twice wins.
func TestUnmarshalReadsAsProtobuf(t *testing.T) {
	good := vectorMessage(t)
	wire := good.Marshal()
	with := func(extra ...byte) []byte { return append(append([]byte{}, wire...), extra...) }
	for name, tc := range map[string]struct {
		b    []byte
		want func(m mvds.Message) bool
	}{
		"unknown field":         {with(0x28, 0x01), func(m mvds.Message) bool { return m.ID() == good.ID() }},
		"unknown fixed64":       {with(0x29, 1, 2, 3, 4, 5, 6, 7, 8), func(m mvds.Message) bool { return m.ID() == good.ID() }},
		"other numbering":       {with(0x10, 0x01), func(m mvds.Message) bool { return m.ID() == good.ID() }},
		"wrong wire type":       {with(0x95, 0xf7, 0x02, 0, 0, 0, 0), func(m mvds.Message) bool { return m.ID() == good.ID() }},
		"timestamp twice, last": {with(0x90, 0xf7, 0x02, 0x07), func(m mvds.Message) bool { return m.Timestamp == 7 }},
		"ephemeral 2 is true":   {with(0xa2, 0xf7, 0x02, 0x02, 0x10, 0x02), func(m mvds.Message) bool { return m.Metadata != nil && m.Metadata.Ephemeral }},
	} {
		m, num, err := mvds.UnmarshalMessage(tc.b)
		if err != nil || num != mvds.SpecNumbering || !tc.want(m) {
			t.Errorf("%s: %+v %v %v", name, m, num, err)
		}
	}
	// A payload with status-im's group_offers (5005) beside an ACK and a
	// MESSAGE keeps both; a 1..4 payload with a stray 5001 is read as 1..4.
	ack := bytes.Repeat([]byte{1}, 32)
	p := mvds.Payload{Acks: [][]byte{ack}, Messages: []mvds.Message{good}}
	spec := append(p.Marshal(), 0xea, 0xb8, 0x02, 0x01, 0xaa) // field 5005, 1 byte
	got, num, err := mvds.UnmarshalPayload(spec)
	if err != nil || num != mvds.SpecNumbering || len(got.Acks) != 1 || len(got.Messages) != 1 || got.Messages[0].ID() != good.ID() {
		t.Errorf("spec payload with group_offers: %+v %v %v", got, num, err)
	}
	compact := append(p.MarshalNumbering(mvds.CompactNumbering), 0xca, 0xb8, 0x02, 0x01, 0xaa) // a stray 5001
	got, num, err = mvds.UnmarshalPayload(compact)
	if err != nil || num != mvds.CompactNumbering || len(got.Acks) != 1 || len(got.Messages) != 1 {
		t.Errorf("compact payload with a stray 5001: %+v %v %v", got, num, err)
	}
}

func FuzzUnmarshalMessage(f *testing.F) {
	f.Add(vectorMessage(f).Marshal())
	for _, row := range testdata.Rows(f, "mvds/wire.txt") {
		f.Add(unhex(f, row[1]))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, num, err := mvds.UnmarshalMessage(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to a payload that decodes to the same message.
		again := (&mvds.Payload{Messages: []mvds.Message{m}}).MarshalNumbering(num)
		p, _, err := mvds.UnmarshalPayload(again)
		if err != nil || len(p.Messages) != 1 || p.Messages[0].ID() != m.ID() {
			t.Fatalf("re-encoding changed the message: %v", err)
		}
	})
}

func FuzzUnmarshalPayload(f *testing.F) {
	for _, row := range testdata.Rows(f, "mvds/wire.txt") {
		f.Add(unhex(f, row[1]))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, num, err := mvds.UnmarshalPayload(b)
		if err != nil {
			return
		}
		if _, _, err := mvds.UnmarshalPayload(p.MarshalNumbering(num)); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
	})
}
