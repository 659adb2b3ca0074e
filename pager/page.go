package pager

import (
	"fmt"
	"math/bits"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Format versions. Readers read all three. Version is the form of sealed
// pages, tail pieces and index nodes since v2, and of a v2 head; V3 changes
// only the head, which keeps its window and index links in a window node
// (WindowNode) beside it. Writers write V3 heads over Version pages.
const (
	Version = 2
	V1      = 1
	V3      = 3
)

// Format limits. A decoder refuses anything beyond them.
const (
	MaxPageBytes = 1 << 20 // encoded page, head or sealed, or index node
	MaxEntries   = 4096
	MaxWindow    = 4096
	MaxAddrs     = 16
	MaxAddrLen   = 1024
	IDLen        = 32
	// MaxIndexPages bounds the pages an index node lists (v2), and
	// MaxIndexNodes the index nodes a head lists.
	MaxIndexPages = 4096
	MaxIndexNodes = 4096
)

// Link points at an older page: its CID and the sequence number of its first
// entry. It is encoded as the array [CID, s].
type Link struct {
	Cid   cid.Cid
	Start uint64
}

// IndexLink points at an index node (v2 head's "x"): its CID, the number
// of the first page it lists and that page's first sequence. It is encoded
// as the array [CID, n, s].
type IndexLink struct {
	Cid   cid.Cid
	Page  uint64
	Start uint64
}

// Entry is one message of a page: its id and either the wire payload inline
// or the CID of the payload (H2). Exactly one of Payload and Ref is set; an
// inline payload may be empty, so Ref decides: Ref.Defined() means pointer.
// A v2 page does not carry the id of an inline entry (a reader hashes the
// payload): it is not encoded, and is zero when decoded.
type Entry struct {
	ID      [IDLen]byte
	Payload []byte
	Ref     cid.Cid
}

// Inline reports whether the entry carries its payload.
func (e *Entry) Inline() bool { return !e.Ref.Defined() }

// Page is a decoded or to-be-encoded page of format v1 or v2.
type Page struct {
	// Version is the format, V1 or Version (2); zero encodes as V1.
	Version uint64
	Number  uint64 // p: 0 is the oldest page
	Start   uint64 // s: sequence number of Entries[0]; the log starts at 1
	Entries []Entry
	Links   []Link // l (v1 only): Links[j] is page Number-2^j
	// Head is true for the head page, which carries Window (possibly empty)
	// and Addrs, and in v2 Index; a sealed page has none of them.
	Head   bool
	Window []Link // w: Window[k] is page Number-1-k
	Addrs  []string
	// Index (v2 head only, "x") lists the index nodes that together list
	// every sealed page, oldest first.
	Index []IndexLink
	// Node (v3 head only, "n", absent on page 0) is the window node that
	// holds the head's Window and Index. A decoded v3 head has neither
	// until Attach gives them from the node.
	Node cid.Cid
	// Tail (v2 and v3 heads only, "t", omitted when empty) lists the pieces of the
	// head's page that come before its own entries, oldest first: pages in
	// sealed form with the head's number, so that a reader a few messages
	// behind fetches only the newest. The head's Start is then that of its
	// own first entry, and the page begins at Tail[0].Start.
	Tail []Link
}

// PageStart is the first sequence of the page: that of its first tail
// piece, or of its own first entry.
func (pg *Page) PageStart() uint64 {
	if len(pg.Tail) > 0 {
		return pg.Tail[0].Start
	}
	return pg.Start
}

// V is the page's format version.
func (pg *Page) V() uint64 {
	if pg.Version == 0 {
		return V1
	}
	return pg.Version
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
func Encode(pg *Page) ([]byte, cid.Cid, error) { return EncodeTo(nil, pg) }

// EncodeTo is Encode into buf, reused when it has room (its contents are
// replaced).
func EncodeTo(buf []byte, pg *Page) ([]byte, cid.Cid, error) {
	if err := pg.validate(); err != nil {
		return nil, cid.Undef, fmt.Errorf("pager: encode page %d: %w", pg.Number, err)
	}
	if size := pg.size(); cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	b := pg.appendCBOR(buf[:0])
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
	v2 := pg.V() != V1 // v2 entries and no skip links (v3 too)
	v3 := pg.V() == V3
	n := uint64(5)
	if v2 {
		n = 4
	}
	if pg.Head {
		switch {
		case v3 && pg.Node.Defined():
			n++
		case v3:
		case v2:
			n += 2
		default:
			n++
		}
		if len(pg.Tail) > 0 {
			n++
		}
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
		b = pg.Entries[i].appendCBOR(b, v2)
	}
	if !v2 {
		b = appendText(b, "l")
		b = appendLinks(b, pg.Links)
	}
	if v3 && pg.Head && pg.Node.Defined() {
		b = appendText(b, "n")
		b = appendCID(b, pg.Node)
	}
	b = appendText(b, "p")
	b = appendHead(b, majUint, pg.Number)
	b = appendText(b, "s")
	b = appendHead(b, majUint, pg.Start)
	if pg.Head && len(pg.Tail) > 0 {
		b = appendText(b, "t")
		b = appendLinks(b, pg.Tail)
	}
	b = appendText(b, "v")
	b = appendHead(b, majUint, pg.V())
	if pg.Head && !v3 {
		b = appendText(b, "w")
		b = appendLinks(b, pg.Window)
		if v2 {
			b = appendText(b, "x")
			b = appendIndexLinks(b, pg.Index)
		}
	}
	return b
}

func appendIndexLinks(b []byte, xs []IndexLink) []byte {
	b = appendHead(b, majArray, uint64(len(xs)))
	for _, x := range xs {
		b = append(b, majArray<<5|3)
		b = appendCID(b, x.Cid)
		b = appendHead(b, majUint, x.Page)
		b = appendHead(b, majUint, x.Start)
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

func (e *Entry) appendCBOR(b []byte, v2 bool) []byte {
	if v2 && e.Inline() {
		return appendBytes(b, e.Payload)
	}
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

// EntrySize is the encoded size in format v2 of an entry with an inline
// payload of n bytes, or, when inline is false, of a pointer entry
// (SHA2-256 CIDv1).
func EntrySize(n int, inline bool) int { return EntrySizeV(Version, n, inline) }

// EntrySizeV is EntrySize in format version v.
func EntrySizeV(v uint64, n int, inline bool) int {
	const fixed = 1 + 2 + 2 + IDLen + 2 // map, "i", bytes head, id, "c" or "r"
	switch {
	case inline && v != V1:
		return headSize(uint64(n)) + n
	case inline:
		return fixed + headSize(uint64(n)) + n
	}
	return fixed + 2 + headSize(37) + 37
}

func (pg *Page) size() int {
	n := 64 + 48*(len(pg.Links)+len(pg.Window)) + 60*len(pg.Index)
	for _, a := range pg.Addrs {
		n += len(a) + 3
	}
	for i := range pg.Entries {
		e := &pg.Entries[i]
		if e.Inline() {
			n += EntrySizeV(pg.V(), len(e.Payload), true)
		} else {
			n += EntrySizeV(pg.V(), 0, false) + cidSize(e.Ref) - cidSize(RawPrefixCID)
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
	pg := &Page{}
	var forms entryForms
	have, err := decodeMap(b, 9, "page", func(r *reader, k string) error {
		var err error
		switch k {
		case "a":
			pg.Addrs, err = r.addrs()
		case "e":
			pg.Entries, forms, err = r.entries()
		case "l":
			pg.Links, err = r.links(64, "l")
		case "p":
			pg.Number, err = r.uint()
		case "s":
			pg.Start, err = r.uint()
		case "v":
			pg.Version, err = r.uint()
		case "w":
			pg.Head = true
			pg.Window, err = r.links(MaxWindow, "w")
			if err == nil && pg.Window == nil {
				pg.Window = []Link{}
			}
		case "t":
			pg.Tail, err = r.links(MaxEntries, "t")
			if err == nil && len(pg.Tail) == 0 {
				err = r.errorf("empty \"t\" must be omitted")
			}
		case "x":
			pg.Index, err = r.indexLinks()
		case "n":
			pg.Node, err = r.cid()
		default:
			return r.errorf("unknown key %q", k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !have["v"] {
		return nil, fmt.Errorf("%w: missing key %q", ErrMalformed, "v")
	}
	if pg.Version != V1 && pg.Version != Version && pg.Version != V3 {
		return nil, fmt.Errorf("%w: %d (this reader knows %d, %d and %d)", ErrVersion, pg.Version, V1, Version, V3)
	}
	if have["n"] && pg.Version != V3 {
		return nil, fmt.Errorf("%w: key \"n\" in a v%d page (only a v3 head links a window node)", ErrMalformed, pg.Version)
	}
	required := []string{"p", "s", "e", "l"}
	if pg.Version == V3 {
		// Every v3 block in page form is a head; its window and index
		// links are in its window node.
		required = []string{"p", "s", "e"}
		pg.Head = true
		switch {
		case have["w"] || have["x"]:
			return nil, fmt.Errorf("%w: key \"w\" or \"x\" in a v3 head (its window node holds them)", ErrMalformed)
		case have["l"]:
			return nil, fmt.Errorf("%w: key \"l\" in a v3 head (no skip links)", ErrMalformed)
		case forms.v1Inline > 0:
			return nil, fmt.Errorf("%w: an inline entry in v1 form {c, i} in a v3 head (v3 writes the payload alone)", ErrMalformed)
		}
	} else if pg.Version == Version {
		required = []string{"p", "s", "e"}
		switch {
		case have["l"]:
			return nil, fmt.Errorf("%w: key \"l\" in a v2 page (v2 pages carry no skip links)", ErrMalformed)
		case forms.v1Inline > 0:
			return nil, fmt.Errorf("%w: an inline entry in v1 form {c, i} in a v2 page (v2 writes the payload alone)", ErrMalformed)
		case pg.Head && !have["x"]:
			return nil, fmt.Errorf("%w: a v2 head page without \"x\"", ErrMalformed)
		case !pg.Head && have["x"]:
			return nil, fmt.Errorf("%w: key \"x\" on a sealed page (no \"w\")", ErrMalformed)
		}
		if pg.Head && pg.Index == nil {
			pg.Index = []IndexLink{}
		}
	} else {
		switch {
		case have["x"]:
			return nil, fmt.Errorf("%w: key \"x\" in a v1 page", ErrMalformed)
		case forms.bare > 0:
			return nil, fmt.Errorf("%w: an entry without id in a v1 page", ErrMalformed)
		}
	}
	for _, k := range required {
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

// entryForms counts the entry forms a page used: v2's bare inline payload
// and v1's {c, i}.
type entryForms struct{ bare, v1Inline int }

func (r *reader) indexLinks() ([]IndexLink, error) {
	n, err := r.length(majArray, MaxIndexNodes, "x")
	if err != nil || n == 0 {
		return nil, err
	}
	out := make([]IndexLink, n)
	for i := range out {
		if m, err := r.length(majArray, 3, "index link"); err != nil || m != 3 {
			if err == nil {
				err = r.errorf("index link %d is not a triple [CID, n, s]", i)
			}
			return nil, err
		}
		if out[i].Cid, err = r.cid(); err != nil {
			return nil, fmt.Errorf("index link %d: %w", i, err)
		}
		if out[i].Page, err = r.uint(); err != nil {
			return nil, fmt.Errorf("index link %d: %w", i, err)
		}
		if out[i].Start, err = r.uint(); err != nil {
			return nil, fmt.Errorf("index link %d: %w", i, err)
		}
	}
	return out, nil
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

func (r *reader) entries() ([]Entry, entryForms, error) {
	var forms entryForms
	n, err := r.length(majArray, MaxEntries, "e")
	if err != nil {
		return nil, forms, err
	}
	out := make([]Entry, n)
	for i := range out {
		if r.off < len(r.b) && r.b[r.off]>>5 == majBytes {
			forms.bare++
			if out[i].Payload, err = r.bytes(MaxPageBytes); err != nil {
				return nil, forms, fmt.Errorf("entry %d: %w", i, err)
			}
			continue
		}
		if err := r.entry(&out[i]); err != nil {
			return nil, forms, fmt.Errorf("entry %d: %w", i, err)
		}
		if out[i].Inline() {
			forms.v1Inline++
		}
	}
	return out, forms, nil
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
	// A sealed-form page numbered 0 may be a tail piece of a head page 0
	// (v2): that page 0 starts at 1 is checked where it is linked.
	if pg.Number == 0 && pg.PageStart() != 1 && (pg.Head || pg.V() == V1) {
		return bad("page 0 starts at sequence %d, want 1", pg.PageStart())
	}
	v1 := pg.V() == V1
	if pg.V() != V1 && pg.V() != Version && pg.V() != V3 {
		return fmt.Errorf("%w: %d", ErrVersion, pg.V())
	}
	if pg.V() == V3 {
		switch {
		case !pg.Head:
			return bad("a v3 page is always a head (sealed pages are v2)")
		case pg.Number > 0 && !pg.Node.Defined():
			return bad("v3 head page %d links no window node \"n\": its sealed pages are not reachable", pg.Number)
		case pg.Number == 0 && pg.Node.Defined():
			return bad("v3 head page 0 links a window node, but has no sealed page to list")
		case pg.Node.Defined() && checkPageLink(Link{Cid: pg.Node}) != nil:
			return bad("n: %v", checkPageLink(Link{Cid: pg.Node}))
		}
	} else if pg.Node.Defined() {
		return bad("a window node link \"n\" on a v%d page", pg.V())
	}
	if want := NumLinks(pg.Number); v1 && len(pg.Links) != want {
		return bad("page %d has %d skip links, want %d", pg.Number, len(pg.Links), want)
	}
	if !v1 && len(pg.Links) > 0 {
		return bad("a v2 page carries no skip links")
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
	if err := checkWindow(pg.Number, pg.Start, pg.Window); err != nil {
		return bad("%v", err)
	}
	for k, w := range pg.Window {
		if v1 && (k+1)&k == 0 { // page p-(k+1) with k+1 a power of two is also l[j]
			if j := bits.TrailingZeros64(uint64(k + 1)); pg.Links[j] != w {
				return bad("w[%d] and l[%d] name page %d differently", k, j, pg.Number-uint64(k)-1)
			}
		}
	}
	if len(pg.Addrs) > MaxAddrs {
		return bad("%d addresses, limit %d", len(pg.Addrs), MaxAddrs)
	}
	if err := pg.validateIndex(); err != nil {
		return bad("%v", err)
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

// checkWindow checks the window links of head page p whose entries start
// at s: newest first, each older than the page after it.
func checkWindow(p, s uint64, window []Link) error {
	if uint64(len(window)) > p {
		return fmt.Errorf("window of %d pages before page %d", len(window), p)
	}
	for k, w := range window {
		if err := checkPageLink(w); err != nil {
			return fmt.Errorf("w[%d]: %v", k, err)
		}
		if k > 0 && w.Start >= window[k-1].Start || k == 0 && w.Start >= s {
			return fmt.Errorf("w[%d] starts at sequence %d, not older than the page after it", k, w.Start)
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

// validateIndex checks a v2 head's index links: they list pages 0 on,
// oldest first, every one before the head.
func (pg *Page) validateIndex() error {
	if len(pg.Index) > 0 && (pg.V() == V1 || !pg.Head) {
		return fmt.Errorf("index links on a page that is not a v2 or v3 head")
	}
	if len(pg.Tail) > 0 && (pg.V() == V1 || !pg.Head) {
		return fmt.Errorf("tail pieces on a page that is not a v2 or v3 head")
	}
	for i, l := range pg.Tail {
		if err := checkPageLink(l); err != nil {
			return fmt.Errorf("t[%d]: %v", i, err)
		}
		if l.Start < pg.Number+1 || l.Start >= pg.Start || (i > 0 && l.Start <= pg.Tail[i-1].Start) {
			return fmt.Errorf("t[%d] starts at sequence %d: impossible before the head's entries at %d", i, l.Start, pg.Start)
		}
	}
	if len(pg.Tail) > MaxEntries {
		return fmt.Errorf("%d tail pieces, limit %d", len(pg.Tail), MaxEntries)
	}
	if len(pg.Tail) > 0 && len(pg.Window) > 0 && pg.Window[0].Start >= pg.Tail[0].Start {
		return fmt.Errorf("w[0] starts at sequence %d, not before the page's first piece at %d", pg.Window[0].Start, pg.Tail[0].Start)
	}
	if pg.V() == V1 || !pg.Head || pg.V() == V3 && pg.Index == nil {
		return nil // a v3 head's index is in its window node, until attached
	}
	return checkIndex(pg.Number, pg.Start, pg.Index)
}

// checkIndex checks the index links of head page p whose entries start at
// s: they list pages 0 on, oldest first, every one before the head.
func checkIndex(p, s uint64, index []IndexLink) error {
	if p > 0 && len(index) == 0 {
		return fmt.Errorf("head page %d lists no index node: the sealed pages are not reachable", p)
	}
	if len(index) > MaxIndexNodes {
		return fmt.Errorf("%d index links, limit %d", len(index), MaxIndexNodes)
	}
	for i, x := range index {
		if err := checkPageLink(Link{Cid: x.Cid}); err != nil {
			return fmt.Errorf("x[%d]: %v", i, err)
		}
		switch {
		case i == 0 && (x.Page != 0 || x.Start != 1):
			return fmt.Errorf("x[0] lists page %d at sequence %d, want page 0 at 1", x.Page, x.Start)
		case i > 0 && (x.Page <= index[i-1].Page || x.Start <= index[i-1].Start):
			return fmt.Errorf("x[%d] (page %d at %d) does not follow x[%d]", i, x.Page, x.Start, i-1)
		case i > 0 && x.Page-index[i-1].Page > MaxIndexPages:
			return fmt.Errorf("x[%d] lists more than %d pages", i-1, MaxIndexPages)
		case x.Page >= p || x.Start >= s || x.Start < x.Page+1:
			return fmt.Errorf("x[%d] (page %d at %d) is impossible before page %d at %d", i, x.Page, x.Start, p, s)
		}
	}
	if len(index) > 0 && p-index[len(index)-1].Page > MaxIndexPages {
		return fmt.Errorf("the last index node would list more than %d pages", MaxIndexPages)
	}
	return nil
}

// Index is an index node (format v2): the links of consecutive sealed
// pages from page First on, oldest first. Encoded as
// {"f": First, "l": [[CID, s], ...], "v": 2}.
type Index struct {
	First uint64
	Pages []Link
}

// Last is the number of the last page the node lists.
func (ix *Index) Last() uint64 { return ix.First + uint64(len(ix.Pages)) - 1 }

// EncodeIndex returns the canonical encoding of an index node and its CID.
func EncodeIndex(ix *Index) ([]byte, cid.Cid, error) {
	if err := ix.validate(); err != nil {
		return nil, cid.Undef, fmt.Errorf("pager: encode index node at page %d: %w", ix.First, err)
	}
	b := ix.appendCBOR(make([]byte, 0, 16+48*len(ix.Pages)))
	c, err := PagePrefix.Sum(b)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("pager: encode index node at page %d: %w", ix.First, err)
	}
	return b, c, nil
}

func (ix *Index) appendCBOR(b []byte) []byte {
	b = appendHead(b, majMap, 3)
	b = appendText(b, "f")
	b = appendHead(b, majUint, ix.First)
	b = appendText(b, "l")
	b = appendLinks(b, ix.Pages)
	b = appendText(b, "v")
	return appendHead(b, majUint, Version)
}

func (ix *Index) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(ix.Pages) == 0 || len(ix.Pages) > MaxIndexPages {
		return bad("index node lists %d pages, want 1..%d", len(ix.Pages), MaxIndexPages)
	}
	if ix.First > 1<<62 {
		return bad("page number %d out of range", ix.First)
	}
	for k, l := range ix.Pages {
		if err := checkPageLink(l); err != nil {
			return bad("l[%d]: %v", k, err)
		}
		p := ix.First + uint64(k)
		if l.Start < p+1 || (k > 0 && l.Start <= ix.Pages[k-1].Start) || (p == 0 && l.Start != 1) || l.Start > 1<<62 {
			return bad("l[%d] (page %d) starts at sequence %d: impossible after the pages before it", k, p, l.Start)
		}
	}
	return nil
}

// DecodeIndex parses and validates an index node, as strictly as Decode a
// page.
func DecodeIndex(b []byte) (*Index, error) {
	ix, err := decodeIndex(b)
	if err != nil {
		return nil, fmt.Errorf("pager: decode index node: %w", err)
	}
	return ix, nil
}

func decodeIndex(b []byte) (*Index, error) {
	ix := &Index{}
	var version uint64
	have, err := decodeMap(b, 3, "index node", func(r *reader, k string) error {
		var err error
		switch k {
		case "f":
			ix.First, err = r.uint()
		case "l":
			ix.Pages, err = r.links(MaxIndexPages, "l")
		case "v":
			version, err = r.uint()
		default:
			return r.errorf("unknown key %q in an index node", k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"f", "l", "v"} {
		if !have[k] {
			return nil, fmt.Errorf("%w: index node without key %q", ErrMalformed, k)
		}
	}
	if version != Version {
		return nil, fmt.Errorf("%w: index node of version %d (index nodes are v%d)", ErrVersion, version, Version)
	}
	if err := ix.validate(); err != nil {
		return nil, err
	}
	return ix, nil
}

// Children decodes a block of a log that is a page or an index node and
// returns every CID it links: pages, index nodes and payloads. Tools that
// walk a log's DAG (keep, pin, backup) use it.
func Children(b []byte) ([]cid.Cid, error) {
	pg, err := Decode(b)
	if err != nil {
		if wn, werr := DecodeWindowNode(b); werr == nil {
			var out []cid.Cid
			for _, l := range wn.Window {
				out = append(out, l.Cid)
			}
			for _, x := range wn.Index {
				out = append(out, x.Cid)
			}
			return out, nil
		}
		ix, ierr := DecodeIndex(b)
		if ierr != nil {
			return nil, err
		}
		out := make([]cid.Cid, len(ix.Pages))
		for i, l := range ix.Pages {
			out[i] = l.Cid
		}
		return out, nil
	}
	var out []cid.Cid
	if pg.Node.Defined() {
		out = append(out, pg.Node)
	}
	for _, l := range pg.Links {
		out = append(out, l.Cid)
	}
	for _, l := range pg.Window {
		out = append(out, l.Cid)
	}
	for _, x := range pg.Index {
		out = append(out, x.Cid)
	}
	for _, l := range pg.Tail {
		out = append(out, l.Cid)
	}
	for i := range pg.Entries {
		if e := &pg.Entries[i]; !e.Inline() {
			out = append(out, e.Ref)
		}
	}
	return out, nil
}

// WindowNode is a v3 head's window node: the links a v2 head carries
// itself, the window (the newest sealed pages) and the index nodes, for
// head page Number. Encoded as {"p": Number, "v": 3, "w": [[CID, s], ...],
// "x": [[CID, n, s], ...]}. It changes only when a page is sealed, so
// publishes between seals reuse it.
type WindowNode struct {
	Number uint64
	Window []Link
	Index  []IndexLink
}

// EncodeWindowNode returns the canonical encoding of a window node and
// its CID.
func EncodeWindowNode(wn *WindowNode) ([]byte, cid.Cid, error) {
	if err := wn.validate(); err != nil {
		return nil, cid.Undef, fmt.Errorf("pager: encode window node of page %d: %w", wn.Number, err)
	}
	b := wn.appendCBOR(make([]byte, 0, 16+48*len(wn.Window)+60*len(wn.Index)))
	if len(b) > MaxPageBytes {
		return nil, cid.Undef, fmt.Errorf("pager: encode window node of page %d: %w: %d bytes, limit %d", wn.Number, ErrTooLarge, len(b), MaxPageBytes)
	}
	c, err := PagePrefix.Sum(b)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("pager: encode window node of page %d: %w", wn.Number, err)
	}
	return b, c, nil
}

func (wn *WindowNode) appendCBOR(b []byte) []byte {
	b = appendHead(b, majMap, 4)
	b = appendText(b, "p")
	b = appendHead(b, majUint, wn.Number)
	b = appendText(b, "v")
	b = appendHead(b, majUint, V3)
	b = appendText(b, "w")
	b = appendLinks(b, wn.Window)
	b = appendText(b, "x")
	return appendIndexLinks(b, wn.Index)
}

// validate checks what a window node says about itself; Attach checks it
// against its head.
func (wn *WindowNode) validate() error {
	const anyStart = 1<<62 + 1 // the head's start is not known here
	switch {
	case wn.Number == 0:
		return fmt.Errorf("%w: a window node of head page 0 (which has no sealed page to list)", ErrMalformed)
	case wn.Number > 1<<62:
		return fmt.Errorf("%w: page number %d out of range", ErrMalformed, wn.Number)
	}
	if err := checkWindow(wn.Number, anyStart, wn.Window); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := checkIndex(wn.Number, anyStart, wn.Index); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// DecodeWindowNode parses and validates a window node, as strictly as
// Decode a page.
func DecodeWindowNode(b []byte) (*WindowNode, error) {
	wn, err := decodeWindowNode(b)
	if err != nil {
		return nil, fmt.Errorf("pager: decode window node: %w", err)
	}
	return wn, nil
}

func decodeWindowNode(b []byte) (*WindowNode, error) {
	wn := &WindowNode{}
	var version uint64
	have, err := decodeMap(b, 4, "window node", func(r *reader, k string) error {
		var err error
		switch k {
		case "p":
			wn.Number, err = r.uint()
		case "v":
			version, err = r.uint()
		case "w":
			wn.Window, err = r.links(MaxWindow, "w")
		case "x":
			wn.Index, err = r.indexLinks()
		default:
			return r.errorf("unknown key %q in a window node", k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"p", "v", "w", "x"} {
		if !have[k] {
			return nil, fmt.Errorf("%w: window node without key %q", ErrMalformed, k)
		}
	}
	if version != V3 {
		return nil, fmt.Errorf("%w: window node of version %d (window nodes are v%d)", ErrVersion, version, V3)
	}
	if err := wn.validate(); err != nil {
		return nil, err
	}
	return wn, nil
}

// Attach gives a decoded v3 head the window and index links of its window
// node wn, whose block has CID c, after checking that c is the node the
// head links and that the links fit the head: its page number, and starts
// before the head's page. A reader that needs no page before the head's
// own page (its cursor is in it) need not fetch the node at all.
func (pg *Page) Attach(c cid.Cid, wn *WindowNode) error {
	switch {
	case pg.V() != V3 || !pg.Head:
		return fmt.Errorf("pager: attach a window node: page %d is not a v3 head", pg.Number)
	case !pg.Node.Defined():
		return fmt.Errorf("pager: attach a window node: %w: head page %d links none", ErrMalformed, pg.Number)
	case !c.Equals(pg.Node):
		return fmt.Errorf("pager: attach a window node: %w: the head links %s, not %s", ErrMalformed, pg.Node, c)
	case wn.Number != pg.Number:
		return fmt.Errorf("pager: attach window node %s: %w: it is for head page %d, the head is page %d", c, ErrMalformed, wn.Number, pg.Number)
	}
	if err := checkWindow(pg.Number, pg.Start, wn.Window); err != nil {
		return fmt.Errorf("pager: attach window node %s: %w: %v", c, ErrMalformed, err)
	}
	if len(pg.Tail) > 0 && len(wn.Window) > 0 && wn.Window[0].Start >= pg.Tail[0].Start {
		return fmt.Errorf("pager: attach window node %s: %w: w[0] starts at sequence %d, not before the page's first piece at %d", c, ErrMalformed, wn.Window[0].Start, pg.Tail[0].Start)
	}
	if err := checkIndex(pg.Number, pg.PageStart(), wn.Index); err != nil {
		return fmt.Errorf("pager: attach window node %s: %w: %v", c, ErrMalformed, err)
	}
	pg.Window, pg.Index = wn.Window, wn.Index
	if pg.Window == nil {
		pg.Window = []Link{}
	}
	return nil
}

// Attached reports whether the head's window and index links are known:
// always for v1 and v2 heads, after Attach for a v3 head (or at once on a
// v3 page 0, which has none).
func (pg *Page) Attached() bool {
	return pg.V() != V3 || pg.Index != nil || !pg.Node.Defined()
}

// Peek reads the number of page b and whether it is in head form, without
// decoding its entries: ok is false for a block not in page form (an
// index node, a window node, anything else). A store uses it to tell
// sealed pages and tail pieces (sealed form, the head's number) from
// heads. It does not validate the page: whatever Decode reads, Peek reads
// alike, but Peek may also read what Decode refuses.
func Peek(b []byte) (number uint64, head, ok bool) {
	if len(b) > MaxPageBytes {
		return 0, false, false
	}
	r := &reader{b: b}
	n, err := r.length(majMap, 9, "page")
	if err != nil {
		return 0, false, false
	}
	var v uint64
	have := 0
	const e, p, s = 1, 2, 4
	for range n {
		k, err := r.text(16)
		if err != nil {
			return 0, false, false
		}
		switch k {
		case "p":
			number, err = r.uint()
			have |= p
		case "v":
			v, err = r.uint()
		case "e":
			have |= e
			err = r.skip(8)
		case "s":
			have |= s
			err = r.skip(8)
		case "w", "n":
			head = true
			err = r.skip(8)
		default:
			err = r.skip(8)
		}
		if err != nil {
			return 0, false, false
		}
	}
	return number, head || v == V3, have == e|p|s && r.off == len(b)
}
