package remotelog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog/internal/journal"
)

// What a repo's block store holds, as `rlog repo stat` and `rlog repo gc`
// see it: the blocks of its own log (reached from its published head, the
// head that head replaced, its fork's other head, and the large payloads
// its journal names), the blocks of the other logs it keeps (reached from
// the records in ipns/: kept, followed with --keep, private logs), and
// garbage, which nothing reaches: heads and tail pieces a publish replaced,
// index nodes rewritten, blocks of a keep that was interrupted.

// holdStore keeps a collection of s from running until the returned
// function is called, when s collects (cas.Embedded).
func holdStore(s any) func() {
	if h, ok := s.(interface{ Hold() func() }); ok {
		return h.Hold()
	}
	return func() {}
}

// Usage counts blocks and their bytes.
type Usage struct {
	Blocks int64 `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

func (u *Usage) add(size int) { u.Blocks++; u.Bytes += int64(size) }

// RepoStat is what a repo holds.
type RepoStat struct {
	OwnLog    Usage `json:"own_log"`    // blocks of the repo's own log
	OtherLogs Usage `json:"other_logs"` // blocks of other logs kept (and not the own log's)
	Logs      int   `json:"logs"`       // other logs with a record here
	Garbage   Usage `json:"garbage"`    // blocks nothing references
	// JournalBytes is the own log's journal (log/): the messages not
	// sealed yet; StoreBytes the block store's files (blocks/), and
	// CacheBytes the reader's block cache, on disk.
	JournalBytes int64 `json:"journal_bytes"`
	StoreBytes   int64 `json:"store_bytes"`
	CacheBytes   int64 `json:"cache_bytes"`
	// Missing counts blocks a kept log's record reaches that are not
	// here (a keep not finished).
	Missing int64 `json:"missing"`
}

// GCResult reports a collection.
type GCResult struct {
	Removed     Usage `json:"removed"`
	Kept        int64 `json:"kept"` // blocks
	StoreBefore int64 `json:"store_bytes_before"`
	StoreAfter  int64 `json:"store_bytes_after"`
}

// liveSet is the blocks reached from some roots, by multihash.
type liveSet map[string]struct{}

func (s liveSet) has(mh multihash.Multihash) bool { _, ok := s[string(mh)]; return ok }

// marked is what the mark phase found: own log and other logs.
type marked struct {
	own, other liveSet
	logs       int
	missing    int64
}

// mark walks every root of the repo. w is the repo's writer: its state and
// journal name the own log's roots.
func (r *Repo) mark(ctx context.Context, w *Writer) (*marked, error) {
	m := &marked{own: liveSet{}, other: liveSet{}}
	g := r.Store()
	head, others, journalRefs, err := w.roots(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range journalRefs {
		// A large payload the journal names: its file, whole.
		if _, err := walkDAG(ctx, g, c, m.own, nil); err != nil {
			return nil, fmt.Errorf("own log: large payload %s: %w", c, err)
		}
	}
	if head.Defined() {
		n, err := walkDAG(ctx, g, head, m.own, nil)
		if err != nil {
			return nil, fmt.Errorf("own log: %w", err)
		}
		// The published head must be here whole when the repo publishes
		// to its own store (its sealed pages are the only copy of its
		// sealed messages); with Kubo, the pages are the daemon's.
		if n > 0 && r.Config.Backend == "" {
			return nil, fmt.Errorf("own log: %d blocks under the head %s are missing from the store (`rlog check` says more): nothing collected", n, head)
		}
	}
	for _, c := range others {
		// These may be gone (deleted by the publish after): what is here
		// of them stays.
		if _, err := walkDAG(ctx, g, c, m.own, nil); err != nil {
			return nil, fmt.Errorf("own log: %w", err)
		}
	}
	names, err := r.recordNames()
	if err != nil {
		return nil, err
	}
	for _, rec := range names {
		if rec.Name.String() == r.name.String() {
			continue // the own log's records: its state names the heads
		}
		if !rec.fork {
			m.logs++
		}
		n, err := walkDAG(ctx, g, rec.Value, m.other, m.own)
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", rec.Name, err)
		}
		m.missing += n
	}
	return m, nil
}

type heldRecord struct {
	*namesys.Record
	fork bool
}

// recordNames reads every record in the repo's name store (ipns/), the
// other records of forks included. A record that does not verify is
// refused: its blocks cannot be told from garbage.
func (r *Repo) recordNames() ([]heldRecord, error) {
	dir := filepath.Join(r.Dir, "ipns")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	var out []heldRecord
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".ipns")
		if !ok || e.IsDir() {
			continue
		}
		base, fork := strings.CutSuffix(base, ".fork")
		name, err := ipns.NameFromString(base)
		if err != nil {
			continue // not a record file (a temporary file of a write)
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read record %s: %w", e.Name(), err)
		}
		// Expired records count: the blocks are still what a keeper holds.
		rec, err := namesys.Parse(name, raw, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("record %s: %w: nothing collected", e.Name(), err)
		}
		out = append(out, heldRecord{rec, fork})
	}
	return out, nil
}

// walkDAG adds to set every block of the log or payload file under root
// that is in g, skipping what skip or set already holds, and returns how
// many blocks it reaches are missing. Raw blocks are looked up, not read.
func walkDAG(ctx context.Context, g cas.Store, root cid.Cid, set, skip liveSet) (int64, error) {
	var missing int64
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return missing, err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		mh := c.Hash()
		if set.has(mh) || skip.has(mh) {
			continue
		}
		codec := c.Prefix().Codec
		if codec == cid.Raw {
			ok, err := g.Has(ctx, c)
			if err != nil {
				return missing, err
			}
			if !ok {
				missing++
				continue
			}
			set[string(mh)] = struct{}{}
			continue
		}
		b, err := g.Get(ctx, c)
		if errors.Is(err, cas.ErrNotFound) {
			missing++
			continue
		}
		if err != nil {
			return missing, err
		}
		set[string(mh)] = struct{}{}
		switch codec {
		case cid.DagCBOR:
			children, err := pager.Children(b)
			if err != nil {
				return missing, fmt.Errorf("block %s: %w", c, err)
			}
			stack = append(stack, children...)
		case cid.DagProtobuf:
			nd, err := merkledag.DecodeProtobuf(b)
			if err != nil {
				return missing, fmt.Errorf("block %s: %w", c, err)
			}
			for _, l := range nd.Links() {
				stack = append(stack, l.Cid)
			}
		}
	}
	return missing, nil
}

// roots are the own log's roots: the published head (undefined before the
// first publish), the heads a reader may still read or recover needs (the
// one it replaced, a fork's other head, a merged fork's), and the payload
// files of the journal's entries: large payloads, published or not, and
// the payloads a sealed page will point at.
func (w *Writer) roots(ctx context.Context) (head cid.Cid, others, refs []cid.Cid, err error) {
	head, _ = cid.Decode(w.st.Head)
	for _, s := range []string{w.st.Prev, w.st.Merged} {
		if c, err := cid.Decode(s); err == nil {
			others = append(others, c)
		}
	}
	if w.superseded.Defined() {
		others = append(others, w.superseded)
	}
	if fr, ok := w.cfg.Resolver.(namesys.ForkResolver); ok {
		if raw, err := fr.ResolveFork(ctx, w.name); err == nil {
			if rec, err := namesys.Parse(w.name, raw, time.Time{}); err == nil {
				others = append(others, rec.Value)
			}
		}
	}
	if n := w.log.Len(); n > w.log.Base() {
		pol := w.cfg.Policy
		err = w.log.Scan(w.log.Base()+1, n, func(_ uint64, e journal.Entry) error {
			switch {
			case e.IsRef():
				refs = append(refs, e.Ref)
			case !pol.InlineSealed(len(e.Payload)):
				// Put by the publish that first covered it, and
				// referenced again when its page is sealed.
				c, _, err := cas.PayloadBlocks(e.Payload)
				if err != nil {
					return err
				}
				refs = append(refs, c)
			}
			return nil
		})
	}
	return head, others, refs, err
}

// Stat counts what the repo holds. w is the repo's writer.
func (r *Repo) Stat(ctx context.Context, w *Writer) (RepoStat, error) {
	var st RepoStat
	e, ok := r.Store().(*cas.Embedded)
	if !ok {
		return st, fmt.Errorf("remotelog: repo stat: %s has no block store of its own", r.Dir)
	}
	m, err := r.mark(ctx, w)
	if err != nil {
		return st, fmt.Errorf("remotelog: repo stat: %w", err)
	}
	st.Logs, st.Missing = m.logs, m.missing
	err = e.Walk(ctx, func(mh multihash.Multihash, size int) error {
		switch {
		case m.own.has(mh):
			st.OwnLog.add(size)
		case m.other.has(mh):
			st.OtherLogs.add(size)
		default:
			st.Garbage.add(size)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("remotelog: repo stat: %w", err)
	}
	st.JournalBytes = dirBytes(filepath.Join(r.Dir, "log"))
	st.StoreBytes = dirBytes(filepath.Join(r.Dir, "blocks"))
	st.CacheBytes = dirBytes(filepath.Join(r.Dir, "cache"))
	return st, nil
}

// GC removes the blocks of the repo's store that nothing references (see
// RepoStat): not the own log's, not a kept log's, not one put while it
// runs. w is the repo's writer, held by the caller so that no publish runs
// beside it; keepers that store a log in the repo hold the store
// (cas.Embedded.Hold) while they make its blocks referenced.
func (r *Repo) GC(ctx context.Context, w *Writer) (GCResult, error) {
	var res GCResult
	e, ok := r.Store().(*cas.Embedded)
	if !ok {
		return res, fmt.Errorf("remotelog: repo gc: %s has no block store of its own", r.Dir)
	}
	res.StoreBefore = dirBytes(filepath.Join(r.Dir, "blocks"))
	got, err := e.Collect(ctx, func(ctx context.Context) (func(multihash.Multihash) bool, error) {
		m, err := r.mark(ctx, w)
		if err != nil {
			return nil, err
		}
		return func(mh multihash.Multihash) bool { return m.own.has(mh) || m.other.has(mh) }, nil
	})
	if err != nil {
		return res, fmt.Errorf("remotelog: repo gc: %w", err)
	}
	res.Removed, res.Kept = Usage{Blocks: got.Blocks, Bytes: got.Bytes}, got.Kept
	res.StoreAfter = dirBytes(filepath.Join(r.Dir, "blocks"))
	return res, nil
}

// dirBytes is the bytes of the files under dir (0 when there is none).
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n
}
