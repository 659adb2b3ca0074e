package remotelog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ipfs/go-cid"

	"rlog/internal/atomicfile"
	"rlog/internal/vfs"
	"rlog/pager"
)

// state is what the writer has published. Writing it (atomically) is the
// commit point of a publish: blocks and sealed-page index entries beyond it
// are ignored, and a record is only made after it is durable.
type state struct {
	Published uint64 `json:"published"`  // entries covered by Head
	Head      string `json:"head"`       // CID of the published head page
	RecordSeq uint64 `json:"record_seq"` // last IPNS sequence number used
	Sealed    uint64 `json:"sealed"`     // sealed pages
	OpenStart uint64 `json:"open_start"` // s of the open (head) page
	// Merged is the head of the other log of a fork that Recover merged
	// into the local log; the next publish supersedes the fork.
	Merged string `json:"merged,omitempty"`
	// Prev is the head Head replaced: a reader who resolved the record
	// before may still read it, so the writer deletes it only at the next
	// publish, and the repo's garbage collection keeps it.
	Prev string `json:"prev,omitempty"`
}

func loadState(fsys vfs.FS, path string) (state, error) {
	st := state{OpenStart: 1}
	b, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read state %s: %w", path, err)
	}
	return st, nil
}

func saveState(fsys vfs.FS, path string, st state) error {
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := atomicfile.WriteIn(fsys, path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// pageIndex is the list of sealed pages, a file of fixed-size records
// (36-byte CID, u64 start), so skip links and the window are read without
// holding every page in memory.
type pageIndex struct {
	f       vfs.File
	n       uint64 // committed records
	pending []pager.Link
}

const pageRec = 36 + 8

func openPageIndex(fsys vfs.FS, path string, committed uint64, readOnly bool) (*pageIndex, error) {
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := fsys.OpenFile(path, flag, 0o644)
	if err != nil && !(readOnly && errors.Is(err, fs.ErrNotExist)) {
		return nil, fmt.Errorf("open page index: %w", err)
	}
	return &pageIndex{f: f, n: committed}, nil
}

// get returns sealed page p, committed or pending.
func (x *pageIndex) get(p uint64) (pager.Link, error) {
	if p >= x.n {
		if i := p - x.n; i < uint64(len(x.pending)) {
			return x.pending[i], nil
		}
		return pager.Link{}, fmt.Errorf("page index: page %d not sealed", p)
	}
	var b [pageRec]byte
	if _, err := x.f.ReadAt(b[:], int64(p)*pageRec); err != nil {
		return pager.Link{}, fmt.Errorf("page index: read page %d: %w", p, err)
	}
	c, err := cid.Cast(b[:36])
	if err != nil {
		return pager.Link{}, fmt.Errorf("page index: page %d: %w", p, err)
	}
	return pager.Link{Cid: c, Start: binary.LittleEndian.Uint64(b[36:])}, nil
}

// links are the skip links of page p.
func (x *pageIndex) links(p uint64) ([]pager.Link, error) {
	ls := make([]pager.Link, pager.NumLinks(p))
	for j := range ls {
		l, err := x.get(pager.LinkTarget(p, j))
		if err != nil {
			return nil, err
		}
		ls[j] = l
	}
	return ls, nil
}

// window lists up to w sealed pages before page p, newest first.
func (x *pageIndex) window(p uint64, w int) ([]pager.Link, error) {
	out := []pager.Link{}
	for k := uint64(1); k <= uint64(w) && k <= p; k++ {
		l, err := x.get(p - k)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func (x *pageIndex) add(l pager.Link) { x.pending = append(x.pending, l) }

func (x *pageIndex) total() uint64 { return x.n + uint64(len(x.pending)) }

// flush writes pending records durably after the committed ones. They only
// count once the state that names their number is saved.
func (x *pageIndex) flush() error {
	if len(x.pending) == 0 {
		return nil
	}
	b := make([]byte, 0, len(x.pending)*pageRec)
	for _, l := range x.pending {
		if len(l.Cid.Bytes()) != 36 {
			return fmt.Errorf("page index: unexpected CID length %d", len(l.Cid.Bytes()))
		}
		b = append(b, l.Cid.Bytes()...)
		b = binary.LittleEndian.AppendUint64(b, l.Start)
	}
	if err := x.f.Truncate(int64(x.n) * pageRec); err != nil {
		return fmt.Errorf("page index: %w", err)
	}
	if _, err := x.f.WriteAt(b, int64(x.n)*pageRec); err != nil {
		return fmt.Errorf("page index: %w", err)
	}
	if err := x.f.Sync(); err != nil {
		return fmt.Errorf("page index: %w", err)
	}
	return nil
}

// commit makes pending records committed (after the state is saved).
func (x *pageIndex) commit() {
	x.n += uint64(len(x.pending))
	x.pending = nil
}

// reset drops pending records (a failed publish).
func (x *pageIndex) reset() { x.pending = nil }

func (x *pageIndex) close() error {
	if x.f == nil {
		return nil
	}
	return x.f.Close()
}
