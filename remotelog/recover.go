package remotelog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/internal/atomicfile"
	"rlog/internal/vfs"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/remotelog/internal/journal"
)

// RecoverResult reports a recovery.
type RecoverResult struct {
	Published uint64 // messages taken from the published log
	Kept      uint64 // local messages it lacked, appended after them
	Dropped   uint64 // local messages it already had
	// Fork is the head of the other log of a fork (a record with the
	// published sequence and another head, kept by the name store), when
	// there was one; Merged counts its messages the published log lacked,
	// appended after them.
	Fork   cid.Cid
	Merged uint64
}

// Recover rebuilds the local log on the published one, the way out of
// ErrBehind, ErrDiverged and ErrFork: the new local log is the published
// log, then every message of the fork's other log it lacks (when the name
// store keeps one, namesys.ForkResolver), then every local message still
// missing (same id, new sequence number). No message is lost. The next
// Publish paginates the rebuilt log from the start and publishes it with a
// higher record sequence, which supersedes both records of a fork.
func (w *Writer) Recover(ctx context.Context) (RecoverResult, error) {
	res, err := w.recover(ctx)
	if err != nil {
		return res, fmt.Errorf("remotelog: recover %s: %w", w.name, err)
	}
	return res, nil
}

type writerSource struct{ *Writer }

// Local says whether the writer publishes to its embedded store.
func (s writerSource) Local() bool {
	_, ok := s.cfg.Store.(*cas.Embedded)
	return ok
}

func (s writerSource) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return s.cfg.Store.Get(ctx, c)
}

func (s writerSource) Resolve(ctx context.Context, n ipns.Name) ([]byte, error) {
	return s.cfg.Resolver.Resolve(ctx, n)
}

func (w *Writer) recover(ctx context.Context) (RecoverResult, error) {
	var res RecoverResult
	tmp := filepath.Join(w.cfg.Dir, "log.recover")
	if err := w.cfg.fs.RemoveAll(tmp); err != nil {
		return res, err
	}
	if err := w.cfg.fs.MkdirAll(tmp, 0o755); err != nil {
		return res, err
	}
	nj, err := journal.OpenIn(w.cfg.fs, tmp, false)
	if err != nil {
		return res, err
	}
	defer nj.Close()
	seen := map[mvds.MessageID]struct{}{}
	var batch []journal.Entry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := nj.Append(batch)
		batch = batch[:0]
		return err
	}
	// take adds a published message the new log does not have yet.
	take := func(count *uint64) func(m Message) error {
		return func(m Message) error {
			if _, ok := seen[m.ID]; ok {
				return nil
			}
			seen[m.ID] = struct{}{}
			e, err := w.localEntry(ctx, m)
			if err != nil {
				return err
			}
			batch = append(batch, e)
			*count++
			if len(batch) >= 4096 {
				return flush()
			}
			return nil
		}
	}
	_, st, err := CatchUp(ctx, writerSource{w}, w.name, Cursor{}, ReadOptions{Now: w.cfg.Now}, take(&res.Published))
	if err != nil {
		return res, fmt.Errorf("read the published log: %w", err)
	}
	// The other log of a fork the name store keeps: its messages the
	// published log lacks come next.
	other, err := w.unmergedFork(ctx, &namesys.Record{Name: w.name, Sequence: st.RecordSequence, Value: st.Head})
	if err != nil {
		return res, err
	}
	next := state{OpenStart: 1, RecordSeq: max(w.st.RecordSeq, st.RecordSequence)}
	if other != nil {
		_, _, err := CatchUp(ctx, writerSource{w}, w.name, Cursor{}, ReadOptions{Head: other.Value, Now: w.cfg.Now}, take(&res.Merged))
		if err != nil {
			return res, fmt.Errorf("read the other log of the fork (%s): %w", other.Value, err)
		}
		res.Fork = other.Value
		next.RecordSeq, next.Merged = max(next.RecordSeq, other.Sequence), other.Value.String()
	}
	err = w.scanEntries(ctx, 1, w.log.Len(), func(_ uint64, e journal.Entry) error {
		if _, ok := seen[e.ID]; ok {
			res.Dropped++
			return nil
		}
		res.Kept++
		batch = append(batch, e)
		if len(batch) >= 4096 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := nj.Close(); err != nil {
		return res, err
	}
	// Pagination restarts from the first message: the new state goes with
	// the rebuilt log, and replaces the old when the log is swapped in, so
	// a crash before leaves the old log (perhaps compacted, its sealed
	// entries on the pages the old state names) with its state, and the
	// refusal to publish stands.
	if err := saveState(w.cfg.fs, filepath.Join(tmp, "state.json"), next); err != nil {
		return res, err
	}
	// From here on the rebuilt log is complete; a crash is finished by the
	// next open.
	if err := atomicfile.WriteIn(w.cfg.fs, filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		return res, err
	}
	w.st = next
	w.pages.n, w.pages.pending = 0, nil
	if err := w.log.Close(); err != nil {
		return res, err
	}
	if err := finishSwap(w.cfg.fs, w.cfg.Dir, "log.recover"); err != nil {
		return res, err
	}
	w.lastPage = sealedPage{}
	lg, err := journal.OpenIn(w.cfg.fs, filepath.Join(w.cfg.Dir, "log"), false)
	if err != nil { // w.log stays closed: what uses the writer fails
		return res, err
	}
	w.log = lg
	w.runDone, w.run = false, nil
	return res, w.loadLastTS()
}

// localEntry is the local journal's entry for m, read from a published log.
// A large message's payload is stored again in the local store, where the
// local log's large payloads live.
func (w *Writer) localEntry(ctx context.Context, m Message) (journal.Entry, error) {
	if !m.IsLarge() {
		return journal.Entry{ID: m.ID, Payload: m.Wire}, nil
	}
	f, err := os.Open(m.BodyFile)
	if err != nil {
		return journal.Entry{}, err
	}
	defer f.Close()
	e, err := importLarge(ctx, w.cfg.Local, m.Message, f, m.BodySize)
	if err != nil {
		return journal.Entry{}, fmt.Errorf("message %d: %w", m.Seq, err)
	}
	return e, nil
}

// finishSwaps finishes or drops what a crash left of a recovery or a
// compaction (finishSwap).
func finishSwaps(fsys vfs.FS, dir string) error {
	return errors.Join(finishSwap(fsys, dir, "log.recover"), finishSwap(fsys, dir, compactDir))
}
