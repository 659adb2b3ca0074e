package remotelog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
)

// An S3 backup is a bucket laid out as a trustless gateway answers:
// PREFIX/ipfs/{cid} holds each raw block of a log (pages and payloads),
// PREFIX/ipns/{name} the log's signed record. Blocks are written once,
// under their CID, and the record last, so the bucket never points at a
// block it lacks. Read over plain HTTP (a public bucket, a CDN in front of
// it), it is a source for `--from https://…`.

func init() {
	sources = append(sources, opener{scheme: "s3", help: "s3://BUCKET/PREFIX: a bucket written by `rlog backup -o s3://…` (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …)", open: func(_ context.Context, arg string) (SourceCloser, error) {
		return OpenS3(arg, cas.S3ConfigFromEnv(os.Getenv))
	}})
}

// RecordType is the content type of an IPNS record, as a gateway serves it.
const RecordType = "application/vnd.ipfs.ipns-record"

// S3Bucket is an S3 backup as a source (blocks and records) and as the
// destination of BackupS3.
type S3Bucket struct {
	*cas.S3
}

// OpenS3 opens the bucket of an s3://BUCKET/PREFIX URL.
func OpenS3(url string, cfg cas.S3Config) (*S3Bucket, error) {
	s, err := cas.OpenS3(url, cfg)
	if err != nil {
		return nil, err
	}
	return &S3Bucket{S3: s}, nil
}

// Close releases nothing: the client holds only idle connections.
func (b *S3Bucket) Close() error { return nil }

func recordKey(name ipns.Name) string { return "ipns/" + name.String() }

// Resolve reads the record the bucket holds for name.
func (b *S3Bucket) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	raw, err := b.GetObject(ctx, b.Key(recordKey(name)), int64(ipns.MaxRecordSize))
	if errors.Is(err, cas.ErrNotFound) {
		return nil, fmt.Errorf("remotelog: %s has no record for %s: %w", b.URL(), name, namesys.ErrNotFound)
	}
	return raw, err
}

// Names lists the logs the bucket holds a record for.
func (b *S3Bucket) Names(ctx context.Context) ([]ipns.Name, error) {
	keys, err := b.List(ctx, "ipns/")
	if err != nil {
		return nil, err
	}
	var names []ipns.Name
	for _, k := range keys {
		if n, err := ipns.NameFromString(k); err == nil {
			names = append(names, n)
		}
	}
	return names, nil
}

// OnlyName is the one log the bucket holds, or an error saying there is
// none or there are several.
func (b *S3Bucket) OnlyName(ctx context.Context) (ipns.Name, error) {
	names, err := b.Names(ctx)
	switch {
	case err != nil:
		return ipns.Name{}, err
	case len(names) == 0:
		return ipns.Name{}, fmt.Errorf("remotelog: %s holds no log (no record under ipns/): %w", b.URL(), ErrNoLog)
	case len(names) > 1:
		return ipns.Name{}, fmt.Errorf("remotelog: %s holds %d logs: name the one to read", b.URL(), len(names))
	}
	return names[0], nil
}

// putRecord writes rec as the bucket's record for its name, cached no
// longer than its TTL, and reads it back.
func (b *S3Bucket) putRecord(ctx context.Context, rec *namesys.Record) error {
	ttl := max(int(rec.TTL/time.Second), 0)
	key := b.Key(recordKey(rec.Name))
	if _, err := b.PutObject(ctx, key, rec.Raw, RecordType, fmt.Sprintf("public, max-age=%d", ttl), false); err != nil {
		return err
	}
	got, err := b.GetObject(ctx, key, int64(ipns.MaxRecordSize))
	if err != nil {
		return fmt.Errorf("remotelog: %s: read the record back: %w", b.URL(), err)
	}
	if !bytes.Equal(got, rec.Raw) {
		return fmt.Errorf("remotelog: %s: the record read back differs from the one written", b.URL())
	}
	return nil
}

// S3BackupOptions tune BackupS3.
type S3BackupOptions struct {
	Now func() time.Time
	// Progress, when set, is told the messages read so far.
	Progress func(done, total uint64)
	// Uploaded, when set, is called after each block written (tests count
	// them, and stop a server in the middle).
	Uploaded func(c cid.Cid)
	// Repair reads every block of the log back from the bucket and writes
	// again each one that is missing or holds other bytes, from the
	// verified local block: a full backup that downloads the whole log.
	Repair bool
}

// S3BackupResult reports a backup to a bucket.
type S3BackupResult struct {
	URL       string
	Name      string
	Head      cid.Cid
	RecordSeq uint64
	Messages  uint64 // the log's
	// Incremental is true when only the part of the log newer than the
	// bucket's record was read; false for a full backup.
	Incremental   bool
	Blocks        int   // the log's blocks read (all of them when not incremental)
	Bytes         int64 // and their size
	Uploaded      int   // blocks written now (repaired ones too)
	UploadedBytes int64 // and their size
	RecordWritten bool  // false when the bucket's was the same
}

// BackupS3 writes log name, read from src and verified, to the bucket:
// every block the bucket lacks (each written once, its stored hash
// checked), then, once all are there, the signed record. A record older
// than the bucket's, or a fork of it, is refused and nothing points at the
// new blocks. Stopped at any point, the bucket still reads as the previous
// complete backup, and the next run writes only what is missing.
//
// The bucket's record says what it holds: every block reachable from its
// head (the record is written last). When that head is an earlier state
// of the same v2 log (its index nodes' pages are the new log's first
// pages), the backup is incremental: it reads the log from the bucket's
// head page on, and writes what it read there that the old head does not
// name (If-None-Match makes a block already there a no-op): the sealed
// pages, tail pieces, payloads and index nodes that are new, and the head.
// It lists nothing and asks for no old block: it trusts the bucket's
// record. A block removed or damaged behind its back is found by `rlog
// check s3://…` and written again by a backup with Repair. Otherwise (no
// valid record in the bucket, a v1 log, another history) it lists the
// bucket and reads the whole log.
func BackupS3(ctx context.Context, src Source, name ipns.Name, dst *S3Bucket, opts S3BackupOptions) (S3BackupResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	res := S3BackupResult{URL: dst.URL(), Name: name.String()}
	fail := func(err error) (S3BackupResult, error) {
		return res, fmt.Errorf("remotelog: backup %s to %s: %w", name, dst.URL(), err)
	}
	rec, err := namesys.Resolve(ctx, src, name, opts.Now())
	if err != nil {
		return fail(err)
	}
	res.Head, res.RecordSeq = rec.Value, rec.Sequence
	// The bucket's own record, if any, must not be newer than this one.
	held, err := namesys.Resolve(ctx, dst, name, opts.Now())
	switch {
	case err == nil, errors.Is(err, namesys.ErrNotFound):
	case errors.Is(err, namesys.ErrInvalid):
		held = nil // damaged or expired: replaced by a valid one
	default:
		return fail(err) // unreadable: it might be newer
	}
	if err := namesys.Compare(held, rec); err != nil {
		return fail(err)
	}
	var cur Cursor
	var have map[cid.Cid]struct{}
	if held != nil && !opts.Repair {
		if since, named, ok := sinceHeld(ctx, src, dst, held.Value, rec.Value); ok {
			res.Incremental = true
			cur, have = Cursor{Seq: since}, named
		}
	}
	if !res.Incremental && !opts.Repair {
		if have, err = dst.Blocks(ctx); err != nil {
			return fail(err)
		}
	}
	up := newUploader(ctx, dst, opts.Repair, opts.Uploaded)
	tee := &teeSource{src: src, put: func(c cid.Cid, b []byte) error {
		res.Blocks++
		res.Bytes += int64(len(b))
		if _, ok := have[c]; ok {
			return nil
		}
		return up.add(c, b)
	}}
	_, st, err := CatchUp(ctx, tee, name, cur, ReadOptions{Head: rec.Value, Now: opts.Now, Whole: true}, func(m Message) error {
		if opts.Progress != nil && m.Seq%4096 == 0 {
			opts.Progress(m.Seq, 0)
		}
		return nil
	})
	res.Messages = st.LogLength
	n, nb, uerr := up.close()
	res.Uploaded, res.UploadedBytes = n, nb
	if err := errors.Join(err, tee.err, uerr); err != nil {
		return fail(err)
	}
	if held != nil && held.Sequence == rec.Sequence {
		return res, nil // the same record: already there
	}
	if err := dst.putRecord(ctx, rec); err != nil {
		return fail(err)
	}
	res.RecordWritten = true
	return res, nil
}

// sinceHeld says whether the log at head extends the one at old, the head
// of the bucket's record, as a v2 log grows: old's index nodes are head's
// first ones, the same blocks but for old's last one, whose pages must
// begin head's node (pages sealed since are added to the last node). Then
// every block reachable from old is in the bucket and is also in the new
// log where it was (sealed pages never change), and what the new log has
// more is all at or after old's page: since is the sequence before it, for
// a reader to start at. named are the blocks old names, which need no
// upload. Head pages and index nodes are read from src, or from the
// bucket (verified) when src no longer holds them; ok is false when they
// cannot be read or the logs differ, and the backup is then a full one.
func sinceHeld(ctx context.Context, src cas.Getter, dst *S3Bucket, old, head cid.Cid) (since uint64, named map[cid.Cid]struct{}, ok bool) {
	get := func(c cid.Cid) ([]byte, error) {
		b, err := cas.Verify(src).Get(ctx, c)
		if err != nil {
			b, err = cas.Verify(dst).Get(ctx, c)
		}
		return b, err
	}
	page := func(c cid.Cid) *pager.Page {
		b, err := get(c)
		if err != nil {
			return nil
		}
		pg, err := pager.Decode(b)
		if err != nil || !pg.Head || pg.V() == pager.V1 {
			return nil
		}
		if !pg.Attached() {
			nb, err := get(pg.Node)
			if err != nil {
				return nil
			}
			wn, err := pager.DecodeWindowNode(nb)
			if err != nil || pg.Attach(pg.Node, wn) != nil {
				return nil
			}
		}
		return pg
	}
	index := func(c cid.Cid) *pager.Index {
		b, err := get(c)
		if err != nil {
			return nil
		}
		ix, err := pager.DecodeIndex(b)
		if err != nil {
			return nil
		}
		return ix
	}
	op, np := page(old), page(head)
	if op == nil || np == nil || np.Number < op.Number || len(np.Index) < len(op.Index) {
		return 0, nil, false
	}
	named = map[cid.Cid]struct{}{old: {}}
	for i, x := range op.Index {
		y := np.Index[i]
		if x.Page != y.Page || x.Start != y.Start {
			return 0, nil, false
		}
		named[x.Cid] = struct{}{}
		if x.Cid == y.Cid {
			continue
		}
		if i != len(op.Index)-1 {
			return 0, nil, false
		}
		ox, nx := index(x.Cid), index(y.Cid)
		if ox == nil || nx == nil || len(nx.Pages) < len(ox.Pages) || !slices.Equal(ox.Pages, nx.Pages[:len(ox.Pages)]) {
			return 0, nil, false
		}
	}
	for _, l := range slices.Concat(op.Window, op.Tail) {
		named[l.Cid] = struct{}{}
	}
	if op.Node.Defined() {
		named[op.Node] = struct{}{}
	}
	return op.PageStart() - 1, named, true
}

// batcher hands blocks, in batches of about cas.PutBatch bytes, to put,
// which runs in the background while the log is read; the first error
// stops it, and the read.
type batcher struct {
	put     func([]blocks.Block) (n int, size int64, err error)
	batches chan []blocks.Block
	batch   []blocks.Block
	size    int
	done    chan struct{}
	mu      sync.Mutex
	n       int
	bytes   int64
	err     error
}

func newBatcher(put func([]blocks.Block) (int, int64, error)) *batcher {
	q := &batcher{put: put, batches: make(chan []blocks.Block, 2), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		for batch := range q.batches {
			if q.failed() == nil {
				q.count(q.put(batch))
			}
		}
	}()
	return q
}

func (q *batcher) failed() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

func (q *batcher) count(n int, size int64, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n += n
	q.bytes += size
	if err != nil && q.err == nil {
		q.err = err
	}
}

// add queues b; it returns the first error of put.
func (q *batcher) add(c cid.Cid, b []byte) error {
	if err := q.failed(); err != nil {
		return err
	}
	q.batch = append(q.batch, cas.NewBlock(c, b))
	if q.size += len(b); q.size >= cas.PutBatch || len(q.batch) >= 256 {
		q.batches <- q.batch
		q.batch, q.size = nil, 0
	}
	return nil
}

// close hands put what is left, waits for it and returns what put counted.
func (q *batcher) close() (int, int64, error) {
	if len(q.batch) > 0 && q.failed() == nil {
		q.batches <- q.batch
	}
	close(q.batches)
	<-q.done
	return q.n, q.bytes, q.err
}

// newUploader writes the blocks added to a bucket: those it lacks, or with
// repair those missing or different there. uploaded, when set, is told
// each block written, and then they are written one at a time.
func newUploader(ctx context.Context, dst *S3Bucket, repair bool, uploaded func(cid.Cid)) *batcher {
	write := dst.PutNew
	if repair {
		write = dst.Repair
	}
	return newBatcher(func(batch []blocks.Block) (int, int64, error) {
		if uploaded == nil {
			return write(ctx, batch)
		}
		// One at a time, so a test sees each block as it is written.
		var n int
		var size int64
		for _, b := range batch {
			k, sz, err := write(ctx, []blocks.Block{b})
			n, size = n+k, size+sz
			if err != nil {
				return n, size, err
			}
			if k > 0 {
				uploaded(b.Cid())
			}
		}
		return n, size, nil
	})
}

// RestoreS3 imports log name from a bucket into a store, with the
// guarantees of RestoreFile: nothing is stored unless the record and the
// whole log verify (every block's hash, every page, every message id).
// The log is read from the bucket as a reader reads it, its pages fetched
// in parallel waves, and each verified block is written to a temporary
// file in dir; once the whole log has verified, the blocks are stored in
// batches and synced, and then the record is kept if it is newer than the
// store's (see RestoreFile). Only the log's own blocks are read.
// progress, when set, is told the messages read and their number.
func RestoreS3(ctx context.Context, b *S3Bucket, name ipns.Name, dir string, store cas.Store, names interface {
	namesys.Publisher
	namesys.Resolver
}, now func() time.Time, progress func(done, total uint64)) (RestoreResult, error) {
	var res RestoreResult
	fail := func(err error) (RestoreResult, error) {
		return res, fmt.Errorf("remotelog: restore from %s: %w", b.URL(), err)
	}
	rec, err := namesys.Resolve(ctx, b, name, now())
	if err != nil {
		return fail(err)
	}
	// A record older than the one held here is a bucket rolled back (an
	// old record put back): refused before anything is read.
	if held, err := namesys.Resolve(ctx, names, name, now()); err == nil {
		if err := namesys.Compare(held, rec); errors.Is(err, ErrRollback) {
			return fail(err)
		}
	}
	sp, err := newSpill(dir)
	if err != nil {
		return fail(err)
	}
	defer sp.remove()
	tee := &teeSource{src: b, put: sp.add}
	var total uint64
	_, st, err := CatchUp(ctx, tee, name, Cursor{}, ReadOptions{Head: rec.Value, Now: now, Whole: true, SpoolDir: dir,
		OnHead: func(n uint64) { total = n }}, func(m Message) error {
		if progress != nil && (m.Seq%4096 == 0 || m.Seq == total) {
			progress(m.Seq, total)
		}
		return nil
	})
	if err := errors.Join(err, tee.err); err != nil {
		return fail(err)
	}
	// The whole log verified: store its blocks, durably, before the record.
	n, err := sp.storeAll(ctx, store)
	if err == nil {
		err = syncStore(ctx, store)
	}
	if err != nil {
		return fail(err)
	}
	res = RestoreResult{Name: name, Head: rec.Value, Blocks: n, Messages: st.LogLength, RecordSeq: rec.Sequence}
	res.RecordSaved, err = keepRestored(ctx, names, rec, now)
	return res, err
}

// spill keeps the verified blocks of a log being restored in a temporary
// file, in the order they were read, until the whole log has verified;
// then storeAll puts them into the store in batches. It holds one entry
// per block in memory, not the blocks.
type spill struct {
	f      *os.File
	w      *bufio.Writer
	blocks []spilled
}

type spilled struct {
	c   cid.Cid
	n   int
	off int // in the file, once storeAll indexes it
}

func newSpill(dir string) (*spill, error) {
	f, err := os.CreateTemp(dir, ".restore-s3-*")
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	return &spill{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (s *spill) add(c cid.Cid, b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	s.blocks = append(s.blocks, spilled{c: c, n: len(b)})
	return nil
}

// storeAll puts the blocks into store, read back from the file (this
// process's own, written from verified blocks).
func (s *spill) storeAll(ctx context.Context, store cas.Store) (int, error) {
	if err := s.w.Flush(); err != nil {
		return 0, fmt.Errorf("stage: %w", err)
	}
	at := make(map[cid.Cid]spilled, len(s.blocks))
	cids := make([]cid.Cid, len(s.blocks))
	off := 0
	for i, b := range s.blocks {
		at[b.c] = spilled{n: b.n, off: off}
		cids[i] = b.c
		off += b.n
	}
	n, err := storeLog(ctx, store, cids, func(_ context.Context, c cid.Cid) ([]byte, error) {
		b := at[c]
		data := make([]byte, b.n)
		if _, err := s.f.ReadAt(data, int64(b.off)); err != nil {
			return nil, fmt.Errorf("stage: read back: %w", err)
		}
		return data, nil
	})
	if err != nil {
		return n, fmt.Errorf("store blocks: %w", err)
	}
	return n, nil
}

func (s *spill) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}

// IsS3URL reports an s3://… argument.
func IsS3URL(s string) bool { return strings.HasPrefix(s, "s3://") }

// RecordSource is a store's blocks with one record of one log: what a
// keeper that just stored a record backs up.
type RecordSource struct {
	cas.Getter
	Record *namesys.Record
}

func (r RecordSource) Resolve(_ context.Context, name ipns.Name) ([]byte, error) {
	if name != r.Record.Name {
		return nil, fmt.Errorf("remotelog: no record for %s: %w", name, namesys.ErrNotFound)
	}
	return r.Record.Raw, nil
}

// CheckHeld is Check, and also compares the source's record with held, a
// record of the log already held (nil for none): an older one is a
// rollback finding, one of the same sequence with another head a fork.
func CheckHeld(ctx context.Context, src Source, name ipns.Name, held *namesys.Record, now func() time.Time) CheckReport {
	rep := Check(ctx, src, name, cid.Undef, now)
	if held == nil {
		return rep
	}
	if got, err := namesys.Resolve(ctx, src, name, now()); err == nil {
		if err := namesys.Compare(held, got); err != nil {
			rep.Findings = append(rep.Findings, finding(err))
		}
	}
	return rep
}
