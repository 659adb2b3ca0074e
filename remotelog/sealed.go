package remotelog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"rlog/cas"
	"rlog/internal/atomicfile"
	"rlog/internal/vfs"
	"rlog/mvds"
	"rlog/pager"
	"rlog/remotelog/internal/journal"
)

// The log is stored once (docs/STORAGE.md). A message's first home is the
// journal; once a publish has sealed the page that holds it and the page is
// durable in the repo's own block store, the sealed page is its only home:
// the journal is compacted to the entries of the open page (the head and
// its tail pieces, re-paginated by every publish) and what is unpublished.
// The writer reads sealed entries back from the pages through the sealed
// page index.

// scanEntries calls f for the entries from..to of the local log, in order:
// the sealed ones compacted out of the journal from their pages, the rest
// from the journal.
func (w *Writer) scanEntries(ctx context.Context, from, to uint64, f func(seq uint64, e journal.Entry) error) error {
	if from > to {
		return nil
	}
	if base := w.log.Base(); from <= base {
		end := min(to, base)
		if err := w.scanSealed(ctx, from, end, f); err != nil {
			return err
		}
		from = end + 1
	}
	if from > to {
		return nil
	}
	return w.log.Scan(from, to, f)
}

// getEntry reads the entry of local sequence number seq.
func (w *Writer) getEntry(ctx context.Context, seq uint64) (journal.Entry, error) {
	if seq < 1 || seq > w.log.Base() {
		return w.log.Get(seq)
	}
	return w.getEntrySealed(ctx, seq)
}

// sealedPage is the page the writer read last, for the next read of an
// entry near it (loadRun walks back one entry at a time).
type sealedPage struct {
	n  uint64
	pg *pager.Page
}

// scanSealed calls f for entries from..to, all on committed sealed pages.
func (w *Writer) scanSealed(ctx context.Context, from, to uint64, f func(seq uint64, e journal.Entry) error) error {
	p, err := w.pageOf(from)
	if err != nil {
		return err
	}
	for seq := from; seq <= to; p++ {
		pg, err := w.sealedPage(ctx, p)
		if err != nil {
			return err
		}
		for i := seq - pg.Start; i < uint64(len(pg.Entries)) && seq <= to; i, seq = i+1, seq+1 {
			e, err := w.pageEntry(ctx, pg, int(i))
			if err != nil {
				return fmt.Errorf("local entry %d (sealed page %d): %w", seq, p, err)
			}
			if err := f(seq, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// pageOf finds the committed sealed page holding seq.
func (w *Writer) pageOf(seq uint64) (uint64, error) {
	n := w.pages.n
	var ferr error
	// The first page starting after seq; seq is on the one before it.
	p := sort.Search(int(n), func(i int) bool {
		l, err := w.pages.get(uint64(i))
		if err != nil {
			ferr = err
			return true
		}
		return l.Start > seq
	})
	if ferr != nil {
		return 0, ferr
	}
	if p == 0 {
		return 0, fmt.Errorf("local entry %d: compacted out of the journal but on no sealed page (%d sealed)", seq, n)
	}
	return uint64(p - 1), nil
}

// sealedPage reads committed sealed page p from the local block store and
// checks it is the page the index says.
func (w *Writer) sealedPage(ctx context.Context, p uint64) (*pager.Page, error) {
	if c := w.lastPage; c.pg != nil && c.n == p {
		return c.pg, nil
	}
	l, err := w.pages.get(p)
	if err != nil {
		return nil, err
	}
	b, err := cas.Verify(w.cfg.Local).Get(ctx, l.Cid)
	if err != nil {
		return nil, fmt.Errorf("read sealed page %d: %w", p, err)
	}
	pg, err := pager.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("read sealed page %d (%s): %w", p, l.Cid, err)
	}
	if pg.Head || pg.Number != p || pg.Start != l.Start {
		return nil, fmt.Errorf("%w: sealed page %d (%s) is page %d from %d, the page index says page %d from %d", ErrInvalidLog, p, l.Cid, pg.Number, pg.Start, p, l.Start)
	}
	w.lastPage = sealedPage{n: p, pg: pg}
	return pg, nil
}

// pageEntry is the journal entry of entry i of a sealed page: the
// payload, inline or read from its file, or for a large message its ref.
func (w *Writer) pageEntry(ctx context.Context, pg *pager.Page, i int) (journal.Entry, error) {
	pe := &pg.Entries[i]
	if pe.Inline() {
		id, err := entryID(pe, pg.V())
		if err != nil {
			return journal.Entry{}, err
		}
		return journal.Entry{ID: id, Payload: pe.Payload}, nil
	}
	rd, size, err := cas.OpenPayload(ctx, cas.Verify(w.cfg.Local), pe.Ref, MaxBody+maxWireHead)
	if err != nil {
		return journal.Entry{}, err
	}
	defer rd.Close()
	if size > LargeMessage {
		m, _, err := mvds.ReadWireHead(bufio.NewReaderSize(rd, 4096), size)
		if err != nil {
			return journal.Entry{}, err
		}
		return journal.Entry{ID: pe.ID, Ref: pe.Ref, Size: size, Timestamp: m.Timestamp}, nil
	}
	wire, err := io.ReadAll(rd)
	if err != nil {
		return journal.Entry{}, err
	}
	m, _, err := mvds.UnmarshalMessage(wire)
	if err != nil {
		return journal.Entry{}, fmt.Errorf("%w: %w", ErrInvalidLog, err)
	}
	if id := m.ID(); !bytes.Equal(id[:], pe.ID[:]) {
		return journal.Entry{}, fmt.Errorf("%w: payload %s hashes to id %x, the page says %x", ErrInvalidLog, pe.Ref, id[:8], pe.ID[:8])
	}
	return journal.Entry{ID: pe.ID, Payload: wire}, nil
}

// compactable says whether sealed pages are in the repo's own block store,
// so that the journal may drop the entries they hold.
func (w *Writer) compactable() bool {
	_, ok := w.cfg.Local.(*cas.Embedded)
	return ok && w.cfg.Local == w.cfg.Store
}

// compactDir is where a compacted journal is written before it replaces
// the live one.
const compactDir = "log.compact"

// compact drops from the journal the entries before the open page, which
// committed sealed pages in the local block store hold (durably: publish
// synced the store before it saved the state). A crash at any point
// leaves the old journal or the new one, both complete: the new journal is
// written and fsynced in a directory of its own and marked complete, and
// only then swapped in (finishSwap, which the next open finishes).
func (w *Writer) compact(ctx context.Context) error {
	keep := w.st.OpenStart
	if !w.compactable() || keep <= w.log.Base()+1 || keep > w.log.Len()+1 {
		return nil
	}
	// The page before the open one must be readable where it is kept.
	if keep > 1 {
		if _, err := w.getEntrySealed(ctx, keep-1); err != nil {
			return fmt.Errorf("compact: %w", err)
		}
	}
	tmp := filepath.Join(w.cfg.Dir, compactDir)
	if err := w.cfg.fs.RemoveAll(tmp); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := w.cfg.fs.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := w.log.CopyFrom(keep, tmp); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	crashAt("compact-copied")
	if err := atomicfile.WriteIn(w.cfg.fs, filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	crashAt("compact-complete")
	if err := w.log.Close(); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := finishSwap(w.cfg.fs, w.cfg.Dir, compactDir); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	// Not reopened, w.log stays closed: what uses the writer fails.
	lg, err := journal.OpenIn(w.cfg.fs, filepath.Join(w.cfg.Dir, "log"), false)
	if err != nil {
		return fmt.Errorf("compact: reopen the journal: %w", err)
	}
	w.log = lg
	return nil
}

// getEntrySealed reads entry seq from its sealed page, whether or not the
// journal still holds it.
func (w *Writer) getEntrySealed(ctx context.Context, seq uint64) (journal.Entry, error) {
	var out journal.Entry
	err := w.scanSealed(ctx, seq, seq, func(_ uint64, e journal.Entry) error {
		out = e
		return nil
	})
	return out, err
}

// finishSwap completes a replacement of the journal directory log by the
// directory name (a recovery's rebuilt log, a compacted journal) once name
// is marked complete, and drops one that is not. A state.json in name
// (a recovery's) replaces the repo's first. Every step is idempotent, so a
// crash anywhere is finished by the next open.
func finishSwap(fsys vfs.FS, dir, name string) error {
	tmp := filepath.Join(dir, name)
	live, old := filepath.Join(dir, "log"), filepath.Join(dir, "log.old")
	if _, err := fsys.Stat(filepath.Join(tmp, "complete")); errors.Is(err, os.ErrNotExist) {
		if err := fsys.RemoveAll(tmp); err != nil {
			return err
		}
		if _, err := fsys.Stat(live); err == nil {
			return fsys.RemoveAll(old) // a swap finished but for this
		}
		return nil
	}
	if err := fsys.Rename(filepath.Join(tmp, "state.json"), filepath.Join(dir, "state.json")); err == nil {
		if err := atomicfile.SyncDirIn(fsys, dir); err != nil {
			return err
		}
		crashAt("swap-state")
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := fsys.Stat(live); err == nil {
		if err := fsys.RemoveAll(old); err != nil {
			return err
		}
		if err := fsys.Rename(live, old); err != nil {
			return err
		}
		crashAt("swap-old")
	}
	if err := fsys.Rename(tmp, live); err != nil {
		return err
	}
	if err := atomicfile.SyncDirIn(fsys, dir); err != nil {
		return err
	}
	crashAt("swap-live")
	fsys.Remove(filepath.Join(live, "complete"))
	return fsys.RemoveAll(old)
}

// crashPoint, when set (by the kill tests, in their child processes), is
// called at the steps of a compaction and a publish where a crash leaves
// something to finish.
var crashPoint func(step string)

func crashAt(step string) {
	if crashPoint != nil {
		crashPoint(step)
	}
}
