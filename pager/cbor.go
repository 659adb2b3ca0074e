package pager

import (
	"bytes"
	"fmt"
	"math"

	"github.com/ipfs/go-cid"
)

// CBOR major types used by the format.
const (
	majUint  = 0
	majBytes = 2
	majText  = 3
	majArray = 4
	majMap   = 5
	majTag   = 6
	tagCID   = 42
)

// appendHead appends a CBOR head with the shortest argument encoding.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func headSize(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= math.MaxUint8:
		return 2
	case n <= math.MaxUint16:
		return 3
	case n <= math.MaxUint32:
		return 5
	}
	return 9
}

func appendBytes(b []byte, v []byte) []byte {
	return append(appendHead(b, majBytes, uint64(len(v))), v...)
}
func appendText(b []byte, v string) []byte {
	return append(appendHead(b, majText, uint64(len(v))), v...)
}

// appendCID appends a DAG-CBOR link: tag 42 over the identity multibase
// prefix 0x00 and the binary CID.
func appendCID(b []byte, c cid.Cid) []byte {
	raw := c.Bytes()
	b = append(b, 0xd8, tagCID)
	b = appendHead(b, majBytes, uint64(len(raw)+1))
	b = append(b, 0)
	return append(b, raw...)
}

func cidSize(c cid.Cid) int {
	n := c.ByteLen() + 1
	return 2 + headSize(uint64(n)) + n
}

// reader decodes the canonical DAG-CBOR subset pages use. Every method
// checks bounds and shortest-form encoding, so no input can make it panic.
type reader struct {
	b   []byte
	off int
}

func (r *reader) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, r.off, fmt.Sprintf(format, args...))
}

// head reads a head of the wanted major type and returns its argument.
func (r *reader) head(major byte) (uint64, error) {
	if r.off >= len(r.b) {
		return 0, r.errorf("unexpected end of data")
	}
	ib := r.b[r.off]
	if got := ib >> 5; got != major {
		return 0, r.errorf("found %s, want %s", majorName(got), majorName(major))
	}
	info := ib & 0x1f
	r.off++
	var n uint64
	var size int
	switch {
	case info < 24:
		return uint64(info), nil
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default:
		return 0, r.errorf("indefinite or reserved length (additional info %d)", info)
	}
	if len(r.b)-r.off < size {
		return 0, r.errorf("unexpected end of data")
	}
	for _, c := range r.b[r.off : r.off+size] {
		n = n<<8 | uint64(c)
	}
	r.off += size
	if headSize(n) != 1+size {
		return 0, r.errorf("integer %d not in shortest form", n)
	}
	return n, nil
}

func majorName(m byte) string {
	return [...]string{"unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag", "float or simple value"}[m]
}

func (r *reader) uint() (uint64, error) { return r.head(majUint) }

func (r *reader) bytes(maxLen int) ([]byte, error) {
	n, err := r.head(majBytes)
	if err != nil {
		return nil, err
	}
	if n > uint64(maxLen) || n > uint64(len(r.b)-r.off) {
		return nil, r.errorf("byte string of %d bytes (limit %d, %d left)", n, maxLen, len(r.b)-r.off)
	}
	v := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return v, nil
}

func (r *reader) text(maxLen int) (string, error) {
	n, err := r.head(majText)
	if err != nil {
		return "", err
	}
	if n > uint64(maxLen) || n > uint64(len(r.b)-r.off) {
		return "", r.errorf("text string of %d bytes (limit %d, %d left)", n, maxLen, len(r.b)-r.off)
	}
	v := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return v, nil
}

// length reads an array or map header, bounded by max.
func (r *reader) length(major byte, max int, what string) (int, error) {
	n, err := r.head(major)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if n > uint64(max) {
		return 0, r.errorf("%s has %d items, limit %d", what, n, max)
	}
	return int(n), nil
}

func (r *reader) cid() (cid.Cid, error) {
	tag, err := r.head(majTag)
	if err != nil {
		return cid.Undef, err
	}
	if tag != tagCID {
		return cid.Undef, r.errorf("tag %d, want 42 (CID)", tag)
	}
	raw, err := r.bytes(128)
	if err != nil {
		return cid.Undef, err
	}
	if len(raw) == 0 || raw[0] != 0 {
		return cid.Undef, r.errorf("CID without the 0x00 multibase prefix")
	}
	n, c, err := cid.CidFromBytes(raw[1:])
	if err != nil {
		return cid.Undef, r.errorf("bad CID: %v", err)
	}
	if n != len(raw)-1 {
		return cid.Undef, r.errorf("trailing bytes after CID")
	}
	return c, nil
}

// keys reads the keys of a map of n entries, calling f for each with the
// reader positioned at its value; keys must be text in canonical order.
func (r *reader) keys(n int, f func(key string) error) error {
	prev := ""
	for i := range n {
		k, err := r.text(16)
		if err != nil {
			return err
		}
		if i > 0 && !keyLess(prev, k) {
			if prev == k {
				return r.errorf("duplicate key %q", k)
			}
			return r.errorf("key %q after %q: not in canonical order", k, prev)
		}
		prev = k
		if err := f(k); err != nil {
			return err
		}
	}
	return nil
}

// keyLess is DAG-CBOR's canonical key order: shorter first, then bytewise.
func keyLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return bytes.Compare([]byte(a), []byte(b)) < 0
}

// decodeMap reads a block that is one map of at most maxKeys keys, calling
// field for each key with the reader at its value, and refuses what is
// over MaxPageBytes or has bytes after the map. It returns the keys seen.
func decodeMap(b []byte, maxKeys int, what string, field func(r *reader, k string) error) (map[string]bool, error) {
	if len(b) > MaxPageBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxPageBytes)
	}
	r := &reader{b: b}
	n, err := r.length(majMap, maxKeys, what)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	err = r.keys(n, func(k string) error {
		have[k] = true
		if err := field(r, k); err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.off != len(b) {
		return nil, r.errorf("%d trailing bytes after the %s", len(b)-r.off, what)
	}
	return have, nil
}

// skip moves past one data item of the subset pages use (integers, byte
// and text strings, arrays, maps, tags), at most maxDepth levels deep.
func (r *reader) skip(maxDepth int) error {
	if maxDepth == 0 {
		return r.errorf("items nested too deep")
	}
	if r.off >= len(r.b) {
		return r.errorf("unexpected end of data")
	}
	major := r.b[r.off] >> 5
	n, err := r.head(major)
	if err != nil {
		return err
	}
	left := uint64(len(r.b) - r.off)
	switch major {
	case majBytes, majText:
		if n > left {
			return r.errorf("string of %d bytes, %d left", n, left)
		}
		r.off += int(n)
	case majArray, majMap:
		if n > left { // every item takes at least a byte
			return r.errorf("%s of %d items, %d bytes left", majorName(major), n, left)
		}
		if major == majMap {
			n *= 2
		}
		for range n {
			if err := r.skip(maxDepth - 1); err != nil {
				return err
			}
		}
	case majTag:
		return r.skip(maxDepth - 1)
	}
	return nil
}
