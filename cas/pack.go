package cas

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/s2"
	"github.com/multiformats/go-multihash"
)

// Pack files hold the blocks a store is asked to keep for good (a log's
// sealed pages, see Embedded.PutPacked) outside LevelDB's tables, which
// rewrote and compressed large page values again at every compaction
// (docs/STORAGE.md). A pack is written once, front to back, and only ever
// grows until it is full; a collection rewrites a pack whose live share is
// low into the newest one and removes it.
//
// A pack file is packMagic followed by records, one per block:
//
//	uvarint  length of the multihash
//	bytes    the block's multihash
//	byte     packRaw or packS2: how the data is stored
//	uvarint  length of the data
//	4 bytes  CRC-32C of the data, little-endian
//	bytes    the data: the block, or its S2 (Snappy-compatible) encoding
//
// The LevelDB beside the packs indexes them: under packKey(mh), where the
// record starts and how long it is (packLoc); under packLenKey(n), how
// many bytes of pack n are committed. A writer syncs a pack before the
// index names its records, so a record the index names is whole; bytes
// past the committed length are a write cut short (a crash) and are cut
// off when the store is next opened for writing, never read. Every read
// checks the record's multihash and checksum as well.
const packMagic = "rlogpk1\n"

// How a record's data is stored.
const (
	packRaw = 0 // as it is: it did not compress
	packS2  = 1 // S2-encoded
)

// maxPackRecord bounds a record (a block is at most a few MiB).
const maxPackRecord = 64 << 20

var (
	crcC = crc32.MakeTable(crc32.Castagnoli)

	errPackRecord = errors.New("malformed pack record")
)

// appendPackRecord appends the record of the block whose multihash is mh
// and whose bytes are raw to b: S2-encoded when that makes it smaller. It
// encodes in scratch, and returns it for the next call.
func appendPackRecord(b, scratch []byte, mh multihash.Multihash, raw []byte) ([]byte, []byte) {
	b = binary.AppendUvarint(b, uint64(len(mh)))
	b = append(b, mh...)
	if n := s2.MaxEncodedLen(len(raw)); cap(scratch) < n {
		scratch = make([]byte, n)
	}
	kind, data := byte(packRaw), raw
	if enc := s2.Encode(scratch[:cap(scratch)], raw); len(enc) < len(raw) {
		kind, data = packS2, enc
	}
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(data, crcC))
	return append(b, data...), scratch
}

// packRecord is a record read from a pack.
type packRecord struct {
	mh   []byte
	kind byte
	data []byte // aliases the record's bytes
}

// decodePackRecord reads the record that is exactly b, checking its
// checksum. It never panics, whatever b holds.
func decodePackRecord(b []byte) (packRecord, error) {
	var r packRecord
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > 128 || uint64(len(b)-k) < n {
		return r, fmt.Errorf("%w: multihash length", errPackRecord)
	}
	r.mh, b = b[k:k+int(n)], b[k+int(n):]
	if len(b) < 1 || b[0] > packS2 {
		return r, fmt.Errorf("%w: storage kind", errPackRecord)
	}
	r.kind, b = b[0], b[1:]
	n, k = binary.Uvarint(b)
	if k <= 0 || n > maxPackRecord || uint64(len(b)-k) != n+4 {
		return r, fmt.Errorf("%w: data length", errPackRecord)
	}
	sum := binary.LittleEndian.Uint32(b[k:])
	r.data = b[k+4:]
	if crc32.Checksum(r.data, crcC) != sum {
		return r, fmt.Errorf("%w: checksum mismatch", errPackRecord)
	}
	return r, nil
}

// block returns the record's block bytes.
func (r packRecord) block() ([]byte, error) {
	if r.kind == packRaw {
		return r.data, nil
	}
	n, err := s2.DecodedLen(r.data)
	if err != nil || n > maxPackRecord {
		return nil, fmt.Errorf("%w: S2 data (%v)", errPackRecord, err)
	}
	out, err := s2.Decode(make([]byte, n), r.data)
	if err != nil {
		return nil, fmt.Errorf("%w: S2 data: %v", errPackRecord, err)
	}
	return out, nil
}

// packLoc is where a block is in the packs: the value of its index entry.
type packLoc struct {
	pack uint64 // the pack's number
	off  uint64 // where its record starts
	n    uint64 // the record's length
	size uint64 // the block's length
}

func (l packLoc) encode() []byte {
	b := make([]byte, 0, 4*binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, l.pack)
	b = binary.AppendUvarint(b, l.off)
	b = binary.AppendUvarint(b, l.n)
	return binary.AppendUvarint(b, l.size)
}

// decodePackLoc reads an index entry's value. It never panics.
func decodePackLoc(b []byte) (packLoc, error) {
	var l packLoc
	for _, p := range []*uint64{&l.pack, &l.off, &l.n, &l.size} {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return l, fmt.Errorf("%w: index entry", errPackRecord)
		}
		*p, b = v, b[k:]
	}
	if len(b) != 0 || l.n > maxPackRecord+256 || l.size > maxPackRecord || l.off < uint64(len(packMagic)) {
		return l, fmt.Errorf("%w: index entry", errPackRecord)
	}
	return l, nil
}

// Keys of the pack index in the LevelDB. Blocks are under "/" and their
// multihash in base32 (the blockstore's keys); these start with '!', which
// sorts before '/', and no block key does.
const (
	packKeyPrefix    = "!p/"
	packLenKeyPrefix = "!P/"
	packNextKey      = "!N"
)

func packKey(mh []byte) []byte { return append([]byte(packKeyPrefix), mh...) }

func packLenKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(packLenKeyPrefix), n)
}

func packName(n uint64) string { return fmt.Sprintf("%08d.pack", n) }
