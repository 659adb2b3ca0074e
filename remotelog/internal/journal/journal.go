package journal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"rlog/internal/vfs"
)

// Entry is one message of the log: its id and either its wire payload or,
// for a large message, the CID of the payload stored as a file (Ref), its
// size and the message's timestamp.
type Entry struct {
	ID        [32]byte
	Payload   []byte
	Ref       cid.Cid
	Size      uint64 // of the wire payload; set for a ref
	Timestamp int64  // set for a ref
}

// IsRef reports whether the entry holds a reference, not the payload.
func (e Entry) IsRef() bool { return e.Ref.Defined() }

var (
	magic   = []byte("RLOGJNL1")
	magicV2 = []byte("RLOGJNL2")
	magicV3 = []byte("RLOGJNL3")
	crcT    = crc32.MakeTable(crc32.Castagnoli)
	// ErrCorrupt is returned for damage that is not a torn tail.
	ErrCorrupt = errors.New("journal is corrupt")
	// ErrCompacted is returned for an entry before a compacted journal's
	// first.
	ErrCompacted = errors.New("entry compacted out of the journal")
)

const (
	frameHead = 8
	// MaxRecord bounds one record; larger lengths are damage.
	MaxRecord = 64<<20 + 32
	refBit    = 1 << 31
	// MaxRef bounds the body of a ref record (id, size, timestamp, CID).
	MaxRef = 32 + 16 + 128
)

// maxBase bounds a compacted journal's base: no log comes near it, and
// base plus records never overflows.
const maxBase = 1 << 62

// frameLen is the length of a record's body, read from its length field; it
// returns false for a length no Append writes.
func frameLen(field uint32) (int, bool) {
	l := int(field &^ refBit)
	if field&refBit != 0 {
		return l, l > 32+16 && l <= MaxRef
	}
	return l, l >= 32 && l <= MaxRecord
}

// Journal is an open local log. It is not safe for concurrent appends; the
// repo's lock gives one writer.
type Journal struct {
	fs       vfs.FS
	dir      string
	log, idx vfs.File
	count    uint64 // records
	base     uint64 // entries before the first record (compacted)
	hdr      int64  // header length
	end      int64  // offset after the last record
	readOnly bool
	v2       bool // the header allows ref records
	// A read-only journal whose index lags keeps the offsets of records
	// tailFrom+1.. in tail.
	tail     []byte
	tailFrom uint64
	// frames and offs are Append's buffers, kept for the next one.
	frames, offs []byte
	closed       bool // what reads or writes it then fails: its files are closed
}

// maxFramesKept is the largest frames buffer Append keeps for the next.
const maxFramesKept = 4 << 20

// Open opens the journal in dir, creating it when writable and missing.
func Open(dir string, readOnly bool) (*Journal, error) { return OpenIn(vfs.OS{}, dir, readOnly) }

// OpenIn is Open in the file system fsys.
func OpenIn(fsys vfs.FS, dir string, readOnly bool) (*Journal, error) {
	j, err := open(fsys, dir, readOnly)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	return j, nil
}

func open(fsys vfs.FS, dir string, readOnly bool) (*Journal, error) {
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	log, err := fsys.OpenFile(filepath.Join(dir, "journal"), flag, 0o644)
	if err != nil {
		return nil, err
	}
	idx, err := fsys.OpenFile(filepath.Join(dir, "index"), flag, 0o644)
	if err != nil {
		log.Close()
		return nil, err
	}
	j := &Journal{fs: fsys, dir: dir, log: log, idx: idx, readOnly: readOnly}
	if err := j.recover(); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// recover establishes count and end from the journal, repairing the index
// and, when writable, truncating a torn tail.
func (j *Journal) recover() error {
	st, err := j.log.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 && !j.readOnly {
		if _, err := j.log.Write(magic); err != nil {
			return err
		}
		if err := j.log.Sync(); err != nil {
			return err
		}
		// A new journal's entry is durable before an append is
		// acknowledged: a power cut would take the whole file.
		if err := j.fs.SyncDir(j.dir); err != nil {
			return err
		}
		size = int64(len(magic))
	}
	head := make([]byte, len(magic))
	if _, err := j.log.ReadAt(head, 0); err != nil || (!bytes.Equal(head, magic) && !bytes.Equal(head, magicV2) && !bytes.Equal(head, magicV3)) {
		return fmt.Errorf("%w: not a journal (bad header)", ErrCorrupt)
	}
	j.v2 = !bytes.Equal(head, magic)
	j.hdr = int64(len(magic))
	if bytes.Equal(head, magicV3) {
		var b [8]byte
		if _, err := j.log.ReadAt(b[:], int64(len(magic))); err != nil {
			return fmt.Errorf("%w: compacted journal without its base: %w", ErrCorrupt, err)
		}
		j.base, j.hdr = binary.LittleEndian.Uint64(b[:]), int64(len(magic)+8)
		if j.base > maxBase {
			return fmt.Errorf("%w: compacted journal starts after %d entries", ErrCorrupt, j.base)
		}
	}
	ist, err := j.idx.Stat()
	if err != nil {
		return err
	}
	// Trust the index up to its last entry that points at a valid record.
	n := uint64(ist.Size() / 8)
	start := j.hdr
	for n > 0 {
		off, err := j.offset(n)
		if err == nil && off >= j.hdr && off < size {
			if l, err := j.readFrameLen(off, size); err == nil {
				start, j.count = off+frameHead+int64(l), n
				break
			}
		}
		n-- // index ran ahead of the journal: fall back
	}
	// Scan records the index does not have yet.
	var pending []byte
	r := bufio.NewReaderSize(io.NewSectionReader(j.log, start, size-start), 1<<20)
	off := start
	for {
		l, err := readFrame(r, nil)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errTorn) {
				break
			}
			return err
		}
		pending = binary.LittleEndian.AppendUint64(pending, uint64(off))
		off += frameHead + int64(l)
		j.count++
	}
	j.end = off
	if j.end != size {
		// A torn record at the end: its Append never returned. Anything
		// after a torn record is suspect only if it holds valid frames.
		if err := j.checkTail(j.end, size); err != nil {
			return err
		}
	}
	if j.readOnly {
		// The index on disk stops short; the offsets it lacks stay here.
		j.tail, j.tailFrom = pending, j.count-uint64(len(pending)/8)
		return nil
	}
	if err := j.log.Truncate(j.end); err != nil {
		return err
	}
	if err := j.idx.Truncate(int64(j.count-uint64(len(pending)/8)) * 8); err != nil {
		return err
	}
	if _, err := j.idx.WriteAt(pending, int64(j.count-uint64(len(pending)/8))*8); err != nil {
		return err
	}
	return errors.Join(j.log.Sync(), j.idx.Sync())
}

var errTorn = errors.New("torn record")

// checkTail refuses to drop bytes after the last good record when a valid
// record follows them: that is damage in the middle, not a torn append.
func (j *Journal) checkTail(from, size int64) error {
	if size-from > MaxRecord+frameHead {
		return fmt.Errorf("%w: %d unreadable bytes at offset %d", ErrCorrupt, size-from, from)
	}
	buf := make([]byte, size-from)
	if _, err := j.log.ReadAt(buf, from); err != nil {
		return err
	}
	for i := 1; i+frameHead <= len(buf); i++ {
		l, ok := frameLen(binary.LittleEndian.Uint32(buf[i:]))
		if !ok || i+frameHead+l > len(buf) {
			continue
		}
		body := buf[i+frameHead : i+frameHead+l]
		if crc32.Checksum(body, crcT) == binary.LittleEndian.Uint32(buf[i+4:]) {
			return fmt.Errorf("%w: damaged record at offset %d followed by a valid one", ErrCorrupt, from)
		}
	}
	return nil
}

// offset is where record rec (1-based: the entry base+rec) starts.
func (j *Journal) offset(rec uint64) (int64, error) {
	if rec > j.tailFrom && j.tail != nil {
		return int64(binary.LittleEndian.Uint64(j.tail[(rec-1-j.tailFrom)*8:])), nil
	}
	var b [8]byte
	if _, err := j.idx.ReadAt(b[:], int64(rec-1)*8); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(b[:])), nil
}

func (j *Journal) readFrameLen(off, size int64) (int, error) {
	var h [frameHead]byte
	if _, err := j.log.ReadAt(h[:], off); err != nil {
		return 0, err
	}
	l, ok := frameLen(binary.LittleEndian.Uint32(h[:]))
	if !ok || off+frameHead+int64(l) > size {
		return 0, errTorn
	}
	body := make([]byte, l)
	if _, err := j.log.ReadAt(body, off+frameHead); err != nil {
		return 0, err
	}
	if crc32.Checksum(body, crcT) != binary.LittleEndian.Uint32(h[4:]) {
		return 0, errTorn
	}
	return l, nil
}

// readFrame reads one record; it returns errTorn or an EOF error for an
// incomplete or damaged record. body, when not nil, receives the body.
func readFrame(r *bufio.Reader, body *[]byte) (int, error) {
	var h [frameHead]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	l, ok := frameLen(binary.LittleEndian.Uint32(h[:]))
	if !ok {
		return 0, errTorn
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, err
	}
	if crc32.Checksum(b, crcT) != binary.LittleEndian.Uint32(h[4:]) {
		return 0, errTorn
	}
	if body != nil {
		*body = b
	}
	return l, nil
}

// Len is the number of entries: the sequence number of the newest.
func (j *Journal) Len() uint64 { return j.base + j.count }

// Base is the number of entries compacted out: the journal holds
// Base()+1..Len().
func (j *Journal) Base() uint64 { return j.base }

// appendFrame appends e's record to b.
func appendFrame(b []byte, e Entry) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = append(b, e.ID[:]...)
	field := uint32(0)
	if e.IsRef() {
		b = binary.LittleEndian.AppendUint64(b, e.Size)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Timestamp))
		b = append(b, e.Ref.Bytes()...)
		field = refBit
	} else {
		b = append(b, e.Payload...)
	}
	l := len(b) - start - frameHead
	if e.IsRef() && l > MaxRef {
		return nil, fmt.Errorf("ref of %d bytes over the limit %d", l, MaxRef)
	}
	if !e.IsRef() && l > MaxRecord {
		return nil, fmt.Errorf("payload of %d bytes over the limit %d", len(e.Payload), MaxRecord-32)
	}
	binary.LittleEndian.PutUint32(b[start:], field|uint32(l))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+frameHead:], crcT))
	return b, nil
}

// decodeFrame checks a record whose header is h and whose body is body,
// and returns its entry; the payload aliases body.
func decodeFrame(h, body []byte) (Entry, error) {
	if crc32.Checksum(body, crcT) != binary.LittleEndian.Uint32(h[4:]) {
		return Entry{}, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	var e Entry
	copy(e.ID[:], body)
	if binary.LittleEndian.Uint32(h)&refBit == 0 {
		e.Payload = body[32:]
		return e, nil
	}
	e.Size = binary.LittleEndian.Uint64(body[32:])
	e.Timestamp = int64(binary.LittleEndian.Uint64(body[40:]))
	n, c, err := cid.CidFromBytes(body[48:])
	if err != nil || n != len(body)-48 {
		return Entry{}, fmt.Errorf("%w: bad ref (%v)", ErrCorrupt, err)
	}
	e.Ref = c
	return e, nil
}

// Append writes entries and returns once they are durable. It returns the
// sequence number of the first. Nothing is written when an entry is
// refused.
func (j *Journal) Append(es []Entry) (uint64, error) {
	if j.readOnly {
		return 0, fmt.Errorf("journal: append: read-only")
	}
	first := j.Len() + 1
	need := 0
	for _, e := range es {
		need += frameHead + len(e.ID) + len(e.Payload) + 16 + e.Ref.ByteLen()
	}
	if cap(j.frames) < need {
		j.frames = make([]byte, 0, need)
	}
	if cap(j.offs) < 8*len(es) {
		j.offs = make([]byte, 0, 8*len(es))
	}
	frames, offs := j.frames[:0], j.offs[:0]
	defer func() {
		if cap(j.frames) > maxFramesKept {
			j.frames = nil
		}
		if cap(j.offs) > maxFramesKept/8 {
			j.offs = nil
		}
	}()
	refs := false
	for _, e := range es {
		offs = binary.LittleEndian.AppendUint64(offs, uint64(j.end)+uint64(len(frames)))
		var err error
		if frames, err = appendFrame(frames, e); err != nil {
			return 0, fmt.Errorf("journal: append: %w", err)
		}
		refs = refs || e.IsRef()
	}
	if refs && !j.v2 {
		// Before the first ref: a build that does not know refs must refuse
		// this journal, not take the ref for a torn tail and drop it.
		if _, err := j.log.WriteAt(magicV2, 0); err != nil {
			return 0, fmt.Errorf("journal: append: %w", err)
		}
		if err := j.log.Sync(); err != nil {
			return 0, fmt.Errorf("journal: append: sync: %w", err)
		}
		j.v2 = true
	}
	if _, err := j.log.WriteAt(frames, j.end); err != nil {
		return 0, fmt.Errorf("journal: append: %w", err)
	}
	if _, err := j.idx.WriteAt(offs, int64(j.count)*8); err != nil {
		return 0, fmt.Errorf("journal: append index: %w", err)
	}
	// The journal alone is synced: an index that a crash cut short is
	// rebuilt from it on open.
	if err := j.log.Sync(); err != nil {
		return 0, fmt.Errorf("journal: append: sync: %w", err)
	}
	j.end += int64(len(frames))
	j.count += uint64(len(es))
	return first, nil
}

// Get reads the entry of sequence number seq.
func (j *Journal) Get(seq uint64) (Entry, error) {
	if seq >= 1 && seq <= j.base {
		return Entry{}, fmt.Errorf("journal: get %d: %w (the journal starts at %d)", seq, ErrCompacted, j.base+1)
	}
	if seq < 1 || seq > j.Len() {
		return Entry{}, fmt.Errorf("journal: get %d: out of range 1..%d", seq, j.Len())
	}
	off, err := j.offset(seq - j.base)
	if err != nil {
		return Entry{}, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	var h [frameHead]byte
	if _, err := j.log.ReadAt(h[:], off); err != nil {
		return Entry{}, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	l, ok := frameLen(binary.LittleEndian.Uint32(h[:]))
	if !ok || off+frameHead+int64(l) > j.end {
		return Entry{}, fmt.Errorf("journal: get %d: %w: bad record length %d", seq, ErrCorrupt, l)
	}
	body := make([]byte, l)
	if _, err := j.log.ReadAt(body, off+frameHead); err != nil {
		return Entry{}, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	e, err := decodeFrame(h[:], body)
	if err != nil {
		return Entry{}, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	return e, nil
}

// scanChunk is how much of the journal Scan reads at once; a record larger
// than that is read whole.
const scanChunk = 1 << 20

// Scan calls f for the entries from..to in order, stopping at f's first
// error. It reads the journal in large chunks; an entry's payload aliases
// a chunk that is never reused, so f may keep it.
func (j *Journal) Scan(from, to uint64, f func(seq uint64, e Entry) error) error {
	return j.scan(from, to, false, f)
}

// Each is Scan through one chunk, reused: an entry's payload is valid
// only until f returns (f copies what it keeps). A long scan then
// allocates one chunk, not the journal's size.
func (j *Journal) Each(from, to uint64, f func(seq uint64, e Entry) error) error {
	return j.scan(from, to, true, f)
}

func (j *Journal) scan(from, to uint64, reuse bool, f func(seq uint64, e Entry) error) error {
	if from < 1 || to > j.Len() || from > to {
		if from == to+1 {
			return nil
		}
		return fmt.Errorf("journal: scan %d..%d: out of range 1..%d", from, to, j.Len())
	}
	if from <= j.base {
		return fmt.Errorf("journal: scan %d..%d: %w (the journal starts at %d)", from, to, ErrCompacted, j.base+1)
	}
	off, err := j.offset(from - j.base)
	if err != nil {
		return fmt.Errorf("journal: scan from %d: %w", from, err)
	}
	var buf []byte   // unparsed bytes of the current chunk
	var chunk []byte // reuse: the chunk read into
	// fill makes buf hold at least need bytes, or all that is left.
	fill := func(need int) error {
		if len(buf) >= need {
			return nil
		}
		n := min(max(scanChunk, need), int(j.end-off)+len(buf))
		var next []byte
		if reuse && cap(chunk) >= n {
			next = chunk[:n]
		} else {
			next = make([]byte, n)
		}
		if reuse {
			chunk = next
		}
		copy(next, buf) // the bytes left to parse first (they may overlap)
		if _, err := j.log.ReadAt(next[len(buf):], off); err != nil {
			return err
		}
		off += int64(n - len(buf))
		buf = next
		return nil
	}
	for seq := from; seq <= to; seq++ {
		if err := fill(frameHead); err != nil {
			return fmt.Errorf("journal: read %d: %w", seq, err)
		}
		if len(buf) < frameHead {
			return fmt.Errorf("journal: read %d: %w: truncated record", seq, ErrCorrupt)
		}
		l, ok := frameLen(binary.LittleEndian.Uint32(buf))
		if !ok {
			return fmt.Errorf("journal: read %d: %w: bad record length %d", seq, ErrCorrupt, l)
		}
		if err := fill(frameHead + l); err != nil {
			return fmt.Errorf("journal: read %d: %w", seq, err)
		}
		if len(buf) < frameHead+l {
			return fmt.Errorf("journal: read %d: %w: truncated record", seq, ErrCorrupt)
		}
		e, err := decodeFrame(buf[:frameHead], buf[frameHead:frameHead+l:frameHead+l])
		if err != nil {
			return fmt.Errorf("journal: read %d: %w", seq, err)
		}
		buf = buf[frameHead+l:]
		if err := f(seq, e); err != nil {
			return err
		}
	}
	return nil
}

// CopyFrom writes, in the empty directory dst, a compacted journal of the
// entries from..Len() (base from-1), and makes it durable: the files and dst
// itself are fsynced. The records are copied as they are. The caller
// replaces this journal's directory with dst once it returns.
func (j *Journal) CopyFrom(from uint64, dst string) error {
	if err := j.copyFrom(from, dst); err != nil {
		return fmt.Errorf("journal: compact from %d into %s: %w", from, dst, err)
	}
	return nil
}

func (j *Journal) copyFrom(from uint64, dst string) error {
	if from <= j.base || from > j.Len()+1 {
		return fmt.Errorf("out of range %d..%d", j.base+1, j.Len()+1)
	}
	start := j.end
	if from <= j.Len() {
		var err error
		if start, err = j.offset(from - j.base); err != nil {
			return err
		}
	}
	log, err := j.fs.OpenFile(filepath.Join(dst, "journal"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	idx, err := j.fs.OpenFile(filepath.Join(dst, "index"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer idx.Close()
	head := binary.LittleEndian.AppendUint64(append([]byte(nil), magicV3...), from-1)
	if _, err := log.Write(head); err != nil {
		return err
	}
	if _, err := io.Copy(log, io.NewSectionReader(j.log, start, j.end-start)); err != nil {
		return err
	}
	shift := int64(len(head)) - start
	w := bufio.NewWriterSize(idx, 64<<10)
	var b [8]byte
	for rec := from - j.base; rec <= j.count; rec++ {
		off, err := j.offset(rec)
		if err != nil {
			return err
		}
		binary.LittleEndian.PutUint64(b[:], uint64(off+shift))
		if _, err := w.Write(b[:]); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := errors.Join(log.Sync(), idx.Sync()); err != nil {
		return err
	}
	return j.fs.SyncDir(dst)
}

// Close closes the files.
func (j *Journal) Close() error {
	if j.closed {
		return nil
	}
	j.closed = true
	return errors.Join(j.log.Close(), j.idx.Close())
}
