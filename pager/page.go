package pager

import (
	"fmt"
	"math/bits"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Format limits. A decoder refuses anything beyond them.
const (
	Version      = 1
	MaxPageBytes = 1 << 20 // encoded page, head or sealed
	MaxEntries   = 4096
	MaxWindow    = 4096
	MaxAddrs     = 16
	MaxAddrLen   = 1024
	IDLen        = 32
)

// Link points at an older page: its CID and the sequence number of its first
// entry. It is encoded as the array [CID, s].
type Link struct {
	Cid   cid.Cid
	Start uint64
}

// Entry is one message of a page: its id and either the wire payload inline
// or the CID of the payload (H2). Exactly one of Payload and Ref is set; an
// inline payload may be empty, so Ref decides: Ref.Defined() means pointer.
type Entry struct {
	ID      [IDLen]byte
	Payload []byte
	Ref     cid.Cid
}

// Inline reports whether the entry carries its payload.
func (e *Entry) Inline() bool { return !e.Ref.Defined() }

// Page is a decoded or to-be-encoded format-v1 page.
type Page struct {
	Number  uint64 // p: 0 is the oldest page
	Start   uint64 // s: sequence number of Entries[0]; the log starts at 1
	Entries []Entry
	Links   []Link // l: Links[j] is page Number-2^j
	// Head is true for the head page, which carries Window (possibly empty)
	// and Addrs; a sealed page has neither.
	Head   bool
	Window []Link // w: Window[k] is page Number-1-k
	Addrs  []string
}

// Last is the sequence number of the page's newest entry.
func (pg *Page) Last() uint64 { return pg.Start + uint64(len(pg.Entries)) - 1 }

// NumLinks is how many skip links page p carries: one per 2^j <= p.
func NumLinks(p uint64) int { return bits.Len64(p) }

// LinkTarget is the page number l[j] of page p points at.
func LinkTarget(p uint64, j int) uint64 { return p - 1<<j }

// Prefixes of the CIDs the format writes.
var (
	PagePrefix = cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: 32}
	RawPrefix  = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: 32}
)

// Encode returns the canonical DAG-CBOR encoding of pg and its CID. It
// refuses a page that Decode would refuse.
func Encode(pg *Page) ([]byte, cid.Cid, error) {
	if err := pg.validate(); err != nil {
		return nil, cid.Undef, fmt.Errorf("pager: encode page %d: %w", pg.Number, err)
	}
	b := pg.appendCBOR(make([]byte, 0, pg.size()))
	if len(b) > MaxPageBytes {
		return nil, cid.Undef, fmt.Errorf("pager: encode page %d: %w: %d bytes, limit %d", pg.Number, ErrTooLarge, len(b), MaxPageBytes)
	}
	c, err := PagePrefix.Sum(b)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("pager: encode page %d: %w", pg.Number, err)
	}
	return b, c, nil
}

func (pg *Page) appendCBOR(b []byte) []byte {
	n := uint64(5)
	if pg.Head {
		n++
		if len(pg.Addrs) > 0 {
			n++
		}
	}
	b = appendHead(b, majMap, n)
	if pg.Head && len(pg.Addrs) > 0 {
		b = appendText(b, "a")
		b = appendHead(b, majArray, uint64(len(pg.Addrs)))
		for _, a := range pg.Addrs {
			b = appendText(b, a)
		}
	}
	b = appendText(b, "e")
	b = appendHead(b, majArray, uint64(len(pg.Entries)))
	for i := range pg.Entries {
		b = pg.Entries[i].appendCBOR(b)
	}
	b = appendText(b, "l")
	b = appendLinks(b, pg.Links)
	b = appendText(b, "p")
	b = appendHead(b, majUint, pg.Number)
	b = appendText(b, "s")
	b = appendHead(b, majUint, pg.Start)
	b = appendText(b, "v")
	b = appendHead(b, majUint, Version)
	if pg.Head {
		b = appendText(b, "w")
		b = appendLinks(b, pg.Window)
	}
	return b
}

func appendLinks(b []byte, ls []Link) []byte {
	b = appendHead(b, majArray, uint64(len(ls)))
	for _, l := range ls {
		b = append(b, majArray<<5|2)
		b = appendCID(b, l.Cid)
		b = appendHead(b, majUint, l.Start)
	}
	return b
}

func (e *Entry) appendCBOR(b []byte) []byte {
	b = append(b, majMap<<5|2)
	if e.Inline() {
		b = appendText(b, "c")
		b = appendBytes(b, e.Payload)
	}
	b = appendText(b, "i")
	b = appendBytes(b, e.ID[:])
	if !e.Inline() {
		b = appendText(b, "r")
		b = appendCID(b, e.Ref)
	}
	return b
}

// EntrySize is the encoded size of an entry with an inline payload of n
// bytes, or, when inline is false, of a pointer entry (SHA2-256 CIDv1).
func EntrySize(n int, inline bool) int {
	const fixed = 1 + 2 + 2 + IDLen + 2 // map, "i", bytes head, id, "c" or "r"
	if inline {
		return fixed + headSize(uint64(n)) + n
	}
	return fixed + 2 + headSize(37) + 37
}

func (pg *Page) size() int {
	n := 64 + 48*(len(pg.Links)+len(pg.Window))
	for _, a := range pg.Addrs {
		n += len(a) + 3
	}
	for i := range pg.Entries {
		e := &pg.Entries[i]
		if e.Inline() {
			n += EntrySize(len(e.Payload), true)
		} else {
			n += EntrySize(0, false) + cidSize(e.Ref) - cidSize(RawPrefixCID)
		}
	}
	return n
}

// RawPrefixCID is any SHA2-256 CIDv1, used for size arithmetic.
var RawPrefixCID, _ = RawPrefix.Sum(nil)

// Decode parses and validates a page block. Anything that is not exactly
// what Encode would write for a valid page is refused with an error that
// wraps ErrMalformed, ErrVersion or ErrTooLarge. Inline payloads alias b.
func Decode(b []byte) (*Page, error) {
	pg, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("pager: decode page: %w", err)
	}
	return pg, nil
}

func decode(b []byte) (*Page, error) {
	if len(b) > MaxPageBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxPageBytes)
	}
	r := &reader{b: b}
	n, err := r.length(majMap, 7, "page")
	if err != nil {
		return nil, err
	}
	pg := &Page{}
	var have = map[string]bool{}
	version := uint64(0)
	err = r.keys(n, func(k string) error {
		have[k] = true
		var err error
		switch k {
		case "a":
			pg.Addrs, err = r.addrs()
		case "e":
			pg.Entries, err = r.entries()
		case "l":
			pg.Links, err = r.links(64, "l")
		case "p":
			pg.Number, err = r.uint()
		case "s":
			pg.Start, err = r.uint()
		case "v":
			version, err = r.uint()
		case "w":
			pg.Head = true
			pg.Window, err = r.links(MaxWindow, "w")
			if err == nil && pg.Window == nil {
				pg.Window = []Link{}
			}
		default:
			return r.errorf("unknown key %q", k)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.off != len(b) {
		return nil, r.errorf("%d trailing bytes after the page", len(b)-r.off)
	}
	if have["v"] && version != Version {
		return nil, fmt.Errorf("%w: %d (this reader knows %d)", ErrVersion, version, Version)
	}
	for _, k := range []string{"v", "p", "s", "e", "l"} {
		if !have[k] {
			return nil, fmt.Errorf("%w: missing key %q", ErrMalformed, k)
		}
	}
	if have["a"] && !pg.Head {
		return nil, fmt.Errorf("%w: key \"a\" on a sealed page (no \"w\")", ErrMalformed)
	}
	if have["a"] && len(pg.Addrs) == 0 {
		return nil, fmt.Errorf("%w: empty \"a\" must be omitted", ErrMalformed)
	}
	if err := pg.validate(); err != nil {
		return nil, err
	}
	return pg, nil
}

func (r *reader) addrs() ([]string, error) {
	n, err := r.length(majArray, MaxAddrs, "a")
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = r.text(MaxAddrLen); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *reader) links(max int, what string) ([]Link, error) {
	n, err := r.length(majArray, max, what)
	if err != nil || n == 0 {
		return nil, err
	}
	out := make([]Link, n)
	for i := range out {
		if m, err := r.length(majArray, 2, "link"); err != nil || m != 2 {
			if err == nil {
				err = r.errorf("link %d is not a pair [CID, s]", i)
			}
			return nil, err
		}
		if out[i].Cid, err = r.cid(); err != nil {
			return nil, fmt.Errorf("link %d: %w", i, err)
		}
		if out[i].Start, err = r.uint(); err != nil {
			return nil, fmt.Errorf("link %d: %w", i, err)
		}
	}
	return out, nil
}

func (r *reader) entries() ([]Entry, error) {
	n, err := r.length(majArray, MaxEntries, "e")
	if err != nil {
		return nil, err
	}
	out := make([]Entry, n)
	for i := range out {
		if err := r.entry(&out[i]); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return out, nil
}

func (r *reader) entry(e *Entry) error {
	n, err := r.length(majMap, 3, "entry")
	if err != nil {
		return err
	}
	var hasC, hasI, hasR bool
	err = r.keys(n, func(k string) error {
		switch k {
		case "c":
			hasC = true
			p, err := r.bytes(MaxPageBytes)
			if err != nil {
				return err
			}
			e.Payload = p
		case "i":
			hasI = true
			id, err := r.bytes(IDLen)
			if err != nil {
				return err
			}
			if len(id) != IDLen {
				return r.errorf("id is %d bytes, want %d", len(id), IDLen)
			}
			copy(e.ID[:], id)
		case "r":
			hasR = true
			c, err := r.cid()
			if err != nil {
				return err
			}
			e.Ref = c
		default:
			return r.errorf("unknown key %q", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case !hasI:
		return fmt.Errorf("%w: no id \"i\"", ErrMalformed)
	case hasC && hasR:
		return fmt.Errorf("%w: both inline payload \"c\" and pointer \"r\"", ErrMalformed)
	case !hasC && !hasR:
		return fmt.Errorf("%w: neither inline payload \"c\" nor pointer \"r\"", ErrMalformed)
	}
	if e.Payload == nil && hasC {
		e.Payload = []byte{}
	}
	return nil
}

// validate checks what a page says about itself: version-independent
// consistency of numbers, links and sizes.
func (pg *Page) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(pg.Entries) == 0 || len(pg.Entries) > MaxEntries {
		return bad("page %d has %d entries, want 1..%d", pg.Number, len(pg.Entries), MaxEntries)
	}
	if pg.Start < pg.Number+1 {
		return bad("page %d starts at sequence %d: every earlier page holds at least one entry, so s >= p+1", pg.Number, pg.Start)
	}
	if pg.Start > 1<<62 {
		return bad("sequence %d out of range", pg.Start)
	}
	if pg.Number == 0 && pg.Start != 1 {
		return bad("page 0 starts at sequence %d, want 1", pg.Start)
	}
	if want := NumLinks(pg.Number); len(pg.Links) != want {
		return bad("page %d has %d skip links, want %d", pg.Number, len(pg.Links), want)
	}
	for j, l := range pg.Links {
		if err := checkPageLink(l); err != nil {
			return bad("l[%d]: %v", j, err)
		}
		target := LinkTarget(pg.Number, j)
		if l.Start < target+1 || l.Start >= pg.Start || (j > 0 && l.Start >= pg.Links[j-1].Start) {
			return bad("l[%d] (page %d) starts at sequence %d, inconsistent with page %d at %d", j, target, l.Start, pg.Number, pg.Start)
		}
	}
	if !pg.Head && (len(pg.Window) > 0 || len(pg.Addrs) > 0) {
		return bad("sealed page %d carries a window or addresses", pg.Number)
	}
	if uint64(len(pg.Window)) > pg.Number {
		return bad("window of %d pages before page %d", len(pg.Window), pg.Number)
	}
	for k, w := range pg.Window {
		if err := checkPageLink(w); err != nil {
			return bad("w[%d]: %v", k, err)
		}
		if k > 0 && w.Start >= pg.Window[k-1].Start || k == 0 && w.Start >= pg.Start {
			return bad("w[%d] starts at sequence %d, not older than the page after it", k, w.Start)
		}
		if (k+1)&k == 0 { // page p-(k+1) with k+1 a power of two is also l[j]
			if j := bits.TrailingZeros64(uint64(k + 1)); pg.Links[j] != w {
				return bad("w[%d] and l[%d] name page %d differently", k, j, pg.Number-uint64(k)-1)
			}
		}
	}
	if len(pg.Addrs) > MaxAddrs {
		return bad("%d addresses, limit %d", len(pg.Addrs), MaxAddrs)
	}
	for i := range pg.Entries {
		if e := &pg.Entries[i]; !e.Inline() {
			if err := CheckPayloadRef(e.Ref); err != nil {
				return bad("entry %d: %v", i, err)
			}
		}
	}
	return nil
}

func checkPageLink(l Link) error {
	if l.Cid.Prefix() != PagePrefix {
		return fmt.Errorf("link %s is not a DAG-CBOR SHA2-256 CIDv1", l.Cid)
	}
	return nil
}

// CheckPayloadRef accepts the CIDs a payload pointer may have: CIDv1 with
// SHA2-256, raw (a payload of one block) or dag-pb (a UnixFS file).
func CheckPayloadRef(c cid.Cid) error {
	p := c.Prefix()
	if p.Version != 1 || p.MhType != mh.SHA2_256 || p.MhLength != 32 || (p.Codec != cid.Raw && p.Codec != cid.DagProtobuf) {
		return fmt.Errorf("pointer %s is not a raw or dag-pb SHA2-256 CIDv1", c)
	}
	return nil
}
