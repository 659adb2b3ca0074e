package pager

import (
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
)

// Policy decides how the log is cut into pages and which payloads are
// carried inline. It is part of a writer's configuration.
type Policy struct {
	// PageEntries is the most entries a page holds (P).
	PageEntries int `json:"page_entries"`
	// PageBytes bounds the encoded size of a sealed page.
	PageBytes int `json:"page_bytes"`
	// InlineLimit is the largest payload a sealed page carries inline;
	// larger ones become pointers (H2). -1 means no payload is inline.
	InlineLimit int `json:"inline_limit"`
	// HeadInlineLimit is the largest payload the head page carries inline,
	// so fresh messages need no extra fetch. At least InlineLimit.
	HeadInlineLimit int `json:"head_inline_limit"`
	// Window is how many of the newest sealed pages the head lists (W).
	Window int `json:"window"`
	// TailEntries (v2) cuts the head's page, but for its newest entries
	// (see HeadEntries), into pieces of TailEntries entries that the head
	// links, so that a reader a few messages behind fetches only the pieces
	// it misses. 0: the head holds its whole page.
	TailEntries int `json:"tail_entries,omitempty"`
	// HeadEntries is the fewest of its page's newest entries the head holds
	// itself when it has pieces: it holds HeadEntries to
	// HeadEntries+TailEntries-1 of them, so that a reader up to
	// HeadEntries-1 behind (it reads the entry at its cursor too) fetches
	// the head alone. 0 means 1.
	HeadEntries int `json:"head_entries,omitempty"`
	// TailRatio, when above 0, grades the tail pieces: each is an aligned
	// run of TailEntries·2^j entries of at most 1/TailRatio of the entries
	// after it, so the newest pieces are the smallest and the older part of
	// the page takes few links. 0: every piece holds TailEntries.
	TailRatio int `json:"tail_ratio,omitempty"`
	// Format is the format version written: 0 (the default) or 3 writes
	// v3 heads over v2 pages, 2 writes v2 (heads carrying their window and
	// index links, for readers that know only v1 and v2), 1 writes v1 (for
	// a reader that only knows v1).
	Format uint64 `json:"format,omitempty"`
}

// FormatVersion is the format a writer with this policy writes.
func (p Policy) FormatVersion() uint64 {
	if p.Format == 0 {
		return V3
	}
	return p.Format
}

// PageVersion is the version of the sealed pages, tail pieces and open
// page a writer with this policy writes: v3 changes only the head.
func (p Policy) PageVersion() uint64 { return min(p.FormatVersion(), Version) }

// Presets by name. "paged" is the default.
var presets = map[string]Policy{
	// Everything inline in big pages: backups on durable storage.
	"full": {PageEntries: MaxEntries, PageBytes: MaxPageBytes, InlineLimit: MaxPageBytes, HeadInlineLimit: MaxPageBytes, Window: 16},
	// Small messages inline in mid-sized pages, large ones by pointer.
	// The head holds the newest 11 entries (a reader 10 behind reads it
	// alone: 10 messages and the one at its cursor), and graded pieces of
	// 2^j entries, each at most a quarter of the entries after it, the rest
	// (docs/PERFORMANCE.md, issue 15).
	"paged": {PageEntries: 256, PageBytes: 256 << 10, InlineLimit: 4 << 10, HeadInlineLimit: 64 << 10, Window: 64, TailEntries: 1, TailRatio: 4, HeadEntries: 11},
	// The spec's linked list: one entry per page, every payload a pointer.
	"linked": {PageEntries: 1, PageBytes: 4 << 10, InlineLimit: -1, HeadInlineLimit: -1, Window: 0},
}

// DefaultPreset names the policy a new log uses.
const DefaultPreset = "paged"

// Preset returns the policy of a preset name.
func Preset(name string) (Policy, error) {
	p, ok := presets[name]
	if !ok {
		return Policy{}, fmt.Errorf("pager: unknown preset %q (want one of %v)", name, PresetNames())
	}
	return p, nil
}

// PresetNames lists the preset names, sorted.
func PresetNames() []string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Validate reports a policy that cannot produce valid pages.
func (p Policy) Validate() error {
	switch {
	case p.PageEntries < 1 || p.PageEntries > MaxEntries:
		return fmt.Errorf("pager: page entries %d, want 1..%d", p.PageEntries, MaxEntries)
	case p.PageBytes < 4<<10 || p.PageBytes > MaxPageBytes:
		return fmt.Errorf("pager: page bytes %d, want %d..%d", p.PageBytes, 4<<10, MaxPageBytes)
	case p.InlineLimit < -1 || p.InlineLimit > MaxPageBytes:
		return fmt.Errorf("pager: inline limit %d, want -1..%d", p.InlineLimit, MaxPageBytes)
	case p.HeadInlineLimit < p.InlineLimit || p.HeadInlineLimit > MaxPageBytes:
		return fmt.Errorf("pager: head inline limit %d, want %d..%d", p.HeadInlineLimit, p.InlineLimit, MaxPageBytes)
	case p.Window < 0 || p.Window > MaxWindow:
		return fmt.Errorf("pager: window %d, want 0..%d", p.Window, MaxWindow)
	case p.TailEntries < 0 || p.TailEntries > MaxEntries:
		return fmt.Errorf("pager: tail entries %d, want 0..%d", p.TailEntries, MaxEntries)
	case p.TailRatio < 0 || p.TailRatio > MaxEntries:
		return fmt.Errorf("pager: tail ratio %d, want 0..%d", p.TailRatio, MaxEntries)
	case p.HeadEntries < 0 || p.HeadEntries > MaxEntries:
		return fmt.Errorf("pager: head entries %d, want 0..%d", p.HeadEntries, MaxEntries)
	case p.Format > V3:
		return fmt.Errorf("pager: format %d, want 1, 2 or %d (0 means %d)", p.Format, V3, V3)
	}
	return nil
}

// InlineSealed reports whether a sealed page carries a payload of n bytes
// inline. When it does not, the writer must store the payload as a block.
// A payload is never inline when the entry alone would not fit in a page.
func (p Policy) InlineSealed(n int) bool {
	return n <= p.InlineLimit && n <= p.PageBytes-fixedHeadroom
}

// fixedHeadroom bounds everything in a page but its entries: 64 skip links
// and the other fields.
const fixedHeadroom = 8 << 10

// Item is a log entry as the writer hands it to the pager. Ref is the
// payload's CID (H2); it must be set when the sealed form points at it.
type Item struct {
	ID      [IDLen]byte
	Payload []byte
	Ref     cid.Cid
	// Size is the payload's size when Payload is not held (a large payload
	// already stored as the file Ref); zero means len(Payload).
	Size uint64
}

// PayloadSize is the size of the item's payload.
func (it Item) PayloadSize() int {
	if it.Payload == nil && it.Size > 0 {
		return int(min(it.Size, 1<<40))
	}
	return len(it.Payload)
}

// Open is the page being filled: the newest page of the log. It is pure
// bookkeeping; Seal and HeadPage turn it into a page to encode.
type Open struct {
	Version uint64 // format: V1 or Version
	Number  uint64
	Start   uint64
	Links   []Link
	Items   []Item
	size    int // bound on the sealed encoding of Items plus the fixed part
}

// NewOpen starts page number p at sequence s in format v, with its skip
// links (v1; nil in v2).
func NewOpen(v, p, s uint64, links []Link) *Open {
	o := &Open{Version: v, Number: p, Start: s, Links: links}
	o.size = o.fixedSize()
	return o
}

// Next makes o the page after it, starting at sequence s with its skip
// links (v1), keeping its item slice for the new items: the page sealed
// before holds its entries apart (Seal copies them).
func (o *Open) Next(s uint64, links []Link) {
	o.Number++
	o.Start, o.Links = s, links
	clear(o.Items) // no payload outlives its page through the slice
	o.Items = o.Items[:0]
	o.size = o.fixedSize()
}

// fixedSize bounds the sealed encoding of everything but the entries.
func (o *Open) fixedSize() int {
	pg := Page{Version: o.Version, Number: o.Number, Start: o.Start, Links: o.Links, Entries: []Entry{{}}}
	b := pg.appendCBOR(nil)
	return len(b) - EntrySizeV(o.Version, 0, true) + 2 // the entry array head may grow by 2
}

// Fits reports whether the page can take an entry with a payload of n
// bytes without going over the policy's limits in its sealed form.
func (o *Open) Fits(p Policy, n int) bool {
	if len(o.Items) == 0 {
		return true
	}
	return len(o.Items) < p.PageEntries && o.size+EntrySizeV(o.Version, n, p.InlineSealed(n)) <= p.PageBytes
}

// Add appends an item. Call Fits first; an item that does not fit in an
// empty page is still added, and its page holds it alone.
func (o *Open) Add(p Policy, it Item) {
	o.Items = append(o.Items, it)
	n := it.PayloadSize()
	o.size += EntrySizeV(o.Version, n, p.InlineSealed(n))
}

// Seal returns the final, immutable form of the page.
func (o *Open) Seal(p Policy) *Page { return o.SealInto(p, nil) }

// SealInto is Seal with the page's entries in entries, reused when it
// has room.
func (o *Open) SealInto(p Policy, entries []Entry) *Page {
	if cap(entries) < len(o.Items) {
		entries = make([]Entry, len(o.Items))
	}
	pg := &Page{Version: o.Version, Number: o.Number, Start: o.Start, Links: o.Links, Entries: entries[:len(o.Items)]}
	for i, it := range o.Items {
		pg.Entries[i] = Entry{ID: it.ID}
		if p.InlineSealed(it.PayloadSize()) {
			pg.Entries[i].Payload = it.Payload
		} else {
			pg.Entries[i].Ref = it.Ref
		}
	}
	return pg
}

// tailCut is how many of the open page's entries go into tail pieces:
// all but the newest HeadEntries..HeadEntries+TailEntries-1, in whole
// pieces (v2 only).
func (o *Open) tailCut(p Policy) int {
	c, h := p.TailEntries, max(p.HeadEntries, 1)
	if o.Version == V1 || c <= 0 || len(o.Items) < h+c {
		return 0
	}
	return (len(o.Items) - h) / c * c
}

// tailRanges returns the [from, to) item ranges of the pieces, oldest
// first: uniform pieces of TailEntries, or graded ones (TailRatio). A
// piece is a function of its range alone, so a piece chosen again at a
// later publish is the same block.
func (o *Open) tailRanges(p Policy) [][2]int {
	cut := o.tailCut(p)
	if cut == 0 {
		return nil
	}
	g, n := p.TailEntries, len(o.Items)
	var out [][2]int
	for to := cut; to > 0; {
		size := g
		for p.TailRatio > 0 && to%(2*size) == 0 && 2*size*p.TailRatio <= n-to {
			size *= 2
		}
		out = append(out, [2]int{to - size, to})
		to -= size
	}
	slices.Reverse(out)
	return out
}

// TailPieces returns the pieces of the open page that the head links
// (v2, v3): sealed-form pages with the page's number, oldest first (see
// tailRanges). A piece stays the same block until the page is sealed or
// merged into a larger piece, so each is stored once.
func (o *Open) TailPieces(p Policy) []*Page {
	ranges := o.tailRanges(p)
	if len(ranges) == 0 {
		return nil
	}
	all := o.Seal(p).Entries
	out := make([]*Page, len(ranges))
	for i, r := range ranges {
		out[i] = &Page{Version: o.Version, Number: o.Number, Start: o.Start + uint64(r[0]), Entries: all[r[0]:r[1]]}
	}
	return out
}

// HeadPage returns the head form of the page: the sealed form plus the
// window, the index nodes (v2) and addresses, with payloads up to the head
// inline limit inline, newest first, as long as the page stays under
// MaxPageBytes. With tail (the links of TailPieces) it holds only the
// entries after them.
func (o *Open) HeadPage(p Policy, window []Link, index []IndexLink, tail []Link, addrs []string) *Page {
	return o.headPage(p, tail, addrs, func(pg *Page) {
		pg.Window = window
		if pg.Window == nil {
			pg.Window = []Link{}
		}
		if o.Version == Version {
			pg.Index = index
			if pg.Index == nil {
				pg.Index = []IndexLink{}
			}
		}
	})
}

// HeadPageV3 is HeadPage in format v3: the head links node, the window
// node holding its window and index links (undefined on page 0), instead
// of carrying them. The open page must be in v2 form.
func (o *Open) HeadPageV3(p Policy, node cid.Cid, tail []Link, addrs []string) *Page {
	return o.headPage(p, tail, addrs, func(pg *Page) {
		pg.Version, pg.Node = V3, node
	})
}

func (o *Open) headPage(p Policy, tail []Link, addrs []string, links func(*Page)) *Page {
	pg := o.Seal(p)
	cut := 0
	if len(tail) > 0 {
		cut = o.tailCut(p)
		pg.Entries, pg.Start, pg.Tail = pg.Entries[cut:], o.Start+uint64(cut), tail
	}
	pg.Head = true
	links(pg)
	pg.Addrs = addrs
	size := len(pg.appendCBOR(nil))
	for i := len(pg.Entries) - 1; i >= 0; i-- {
		e, it := &pg.Entries[i], &o.Items[cut+i]
		n := it.PayloadSize()
		if e.Inline() || n > p.HeadInlineLimit {
			continue
		}
		grow := EntrySizeV(o.Version, n, true) - EntrySizeV(o.Version, 0, false)
		if size+grow > MaxPageBytes {
			continue
		}
		size += grow
		e.Payload, e.Ref = it.Payload, cid.Undef
	}
	return pg
}
