package cas

import (
	"bytes"
	"testing"

	"github.com/multiformats/go-multihash"
)

func rec(mh, raw []byte) []byte {
	b, _ := appendPackRecord(nil, nil, mh, raw)
	return b
}

// FuzzPackRecord: the pack record decoder never panics, and what it
// accepts encodes again to the same bytes' block.
func FuzzPackRecord(f *testing.F) {
	mh, _ := multihash.Sum([]byte("block"), multihash.SHA2_256, -1)
	f.Add(rec(mh, []byte("block")))
	f.Add(rec(mh, bytes.Repeat([]byte("page "), 200)))
	f.Add([]byte{})
	f.Add([]byte{0x22, 0x12, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodePackRecord(b)
		if err != nil {
			return
		}
		blk, err := r.block()
		if err != nil {
			return
		}
		if len(blk) > maxPackRecord {
			t.Fatalf("block of %d bytes", len(blk))
		}
		again, err := decodePackRecord(rec(r.mh, blk))
		if err != nil {
			t.Fatalf("a record made again does not decode: %v", err)
		}
		if got, err := again.block(); err != nil || !bytes.Equal(got, blk) || !bytes.Equal(again.mh, r.mh) {
			t.Fatalf("a record made again reads %d bytes, %v", len(got), err)
		}
	})
}

// FuzzPackLoc: the index entry decoder never panics, and what it accepts
// reads back the same once encoded.
func FuzzPackLoc(f *testing.F) {
	f.Add(packLoc{pack: 3, off: 8, n: 70_000, size: 75_000}.encode())
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := decodePackLoc(b)
		if err != nil {
			return
		}
		if again, err := decodePackLoc(l.encode()); err != nil || again != l {
			t.Fatalf("%+v encodes to %x, which reads %+v, %v", l, l.encode(), again, err)
		}
	})
}
