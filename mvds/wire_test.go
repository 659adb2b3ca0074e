package mvds_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strconv"
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
		num := mvds.SpecNumbering
		if row[0] == "compact" {
			num = mvds.CompactNumbering
		}
		if got := p.MarshalNumbering(num); !bytes.Equal(got, want) {
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
		"truncated":        good[:len(good)-2],
		"unknown field":    {0x28, 0x01}, // field 5, varint
		"repeated scalar":  append(append([]byte{}, good...), 0x90, 0xf7, 0x02, 0x01),
		"mixed numbering":  append(append([]byte{}, good...), 0x10, 0x01), // field 2 (compact timestamp)
		"wrong wire type":  {0x95, 0xf7, 0x02, 0, 0, 0, 0},                // 6002 as fixed32
		"bad ephemeral":    {0xa2, 0xf7, 0x02, 0x02, 0x10, 0x05},
		"bad tag":          {0x80},
		"group length lie": {0x8a, 0xf7, 0x02, 0x7f, 0x01},
	}
	for name, b := range cases {
		if _, _, err := mvds.UnmarshalMessage(b); !errors.Is(err, mvds.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	if _, _, err := mvds.UnmarshalPayload(unhex(t, "cab80201aa0a01aa")); !errors.Is(err, mvds.ErrMalformed) {
		t.Errorf("payload with mixed numbering: got %v", err)
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
