// Package journal is the writer's durable local log: an append-only file of
// CRC-framed records and an index of their offsets. Append returns only once
// both are fsynced. Open repairs what a crash can leave: a torn record at
// the end of the journal (never acknowledged, so dropped) and an index that
// lags or runs ahead of the journal (rebuilt from the journal, which is the
// truth). A damaged record before the end is an error, never dropped.
//
// Record i (0-based) holds the entry of sequence number i+1:
//
//	journal: "RLOGJNL1" then per record: u32le n | u32le crc32c(body) | body[n]
//	body:    id[32] | wire payload
//	index:   u64le offset of each record
package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// Entry is one message of the log: its id and wire payload.
type Entry struct {
	ID      [32]byte
	Payload []byte
}

var (
	magic = []byte("RLOGJNL1")
	crcT  = crc32.MakeTable(crc32.Castagnoli)
	// ErrCorrupt is returned for damage that is not a torn tail.
	ErrCorrupt = errors.New("journal is corrupt")
)

const (
	frameHead = 8
	// MaxRecord bounds one record; larger lengths are damage.
	MaxRecord = 64<<20 + 32
)

// Journal is an open local log. It is not safe for concurrent appends; the
// repo's lock gives one writer.
type Journal struct {
	dir      string
	log, idx *os.File
	count    uint64 // records
	end      int64  // offset after the last record
	readOnly bool
}

// Open opens the journal in dir, creating it when writable and missing.
func Open(dir string, readOnly bool) (*Journal, error) {
	j, err := open(dir, readOnly)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	return j, nil
}

func open(dir string, readOnly bool) (*Journal, error) {
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	log, err := os.OpenFile(filepath.Join(dir, "journal"), flag, 0o644)
	if err != nil {
		return nil, err
	}
	idx, err := os.OpenFile(filepath.Join(dir, "index"), flag, 0o644)
	if err != nil {
		log.Close()
		return nil, err
	}
	j := &Journal{dir: dir, log: log, idx: idx, readOnly: readOnly}
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
		size = int64(len(magic))
	}
	head := make([]byte, len(magic))
	if _, err := j.log.ReadAt(head, 0); err != nil || string(head) != string(magic) {
		return fmt.Errorf("%w: not a journal (bad header)", ErrCorrupt)
	}
	ist, err := j.idx.Stat()
	if err != nil {
		return err
	}
	// Trust the index up to its last entry that points at a valid record.
	n := uint64(ist.Size() / 8)
	start := int64(len(magic))
	for n > 0 {
		off, err := j.offset(n)
		if err == nil && off >= int64(len(magic)) && off < size {
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
		l := binary.LittleEndian.Uint32(buf[i:])
		if l < 32 || int64(i)+frameHead+int64(l) > int64(len(buf)) {
			continue
		}
		body := buf[i+frameHead : i+frameHead+int(l)]
		if crc32.Checksum(body, crcT) == binary.LittleEndian.Uint32(buf[i+4:]) {
			return fmt.Errorf("%w: damaged record at offset %d followed by a valid one", ErrCorrupt, from)
		}
	}
	return nil
}

func (j *Journal) offset(seq uint64) (int64, error) {
	var b [8]byte
	if _, err := j.idx.ReadAt(b[:], int64(seq-1)*8); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(b[:])), nil
}

func (j *Journal) readFrameLen(off, size int64) (uint32, error) {
	var h [frameHead]byte
	if _, err := j.log.ReadAt(h[:], off); err != nil {
		return 0, err
	}
	l := binary.LittleEndian.Uint32(h[:])
	if l < 32 || l > MaxRecord || off+frameHead+int64(l) > size {
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
func readFrame(r *bufio.Reader, body *[]byte) (uint32, error) {
	var h [frameHead]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	l := binary.LittleEndian.Uint32(h[:])
	if l < 32 || l > MaxRecord {
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
func (j *Journal) Len() uint64 { return j.count }

// Append writes entries and returns once they are durable. It returns the
// sequence number of the first.
func (j *Journal) Append(es []Entry) (uint64, error) {
	if j.readOnly {
		return 0, fmt.Errorf("journal: append: read-only")
	}
	first := j.count + 1
	var frames, offs []byte
	off := j.end
	for _, e := range es {
		l := 32 + len(e.Payload)
		if l > MaxRecord {
			return 0, fmt.Errorf("journal: append: payload of %d bytes over the limit %d", len(e.Payload), MaxRecord-32)
		}
		start := len(frames)
		frames = binary.LittleEndian.AppendUint32(frames, uint32(l))
		frames = append(frames, 0, 0, 0, 0)
		frames = append(frames, e.ID[:]...)
		frames = append(frames, e.Payload...)
		binary.LittleEndian.PutUint32(frames[start+4:], crc32.Checksum(frames[start+frameHead:], crcT))
		offs = binary.LittleEndian.AppendUint64(offs, uint64(off))
		off += int64(frameHead + l)
	}
	if _, err := j.log.WriteAt(frames, j.end); err != nil {
		return 0, fmt.Errorf("journal: append: %w", err)
	}
	if _, err := j.idx.WriteAt(offs, int64(j.count)*8); err != nil {
		return 0, fmt.Errorf("journal: append index: %w", err)
	}
	if err := j.log.Sync(); err != nil {
		return 0, fmt.Errorf("journal: append: sync: %w", err)
	}
	if err := j.idx.Sync(); err != nil {
		return 0, fmt.Errorf("journal: append: sync index: %w", err)
	}
	j.end = off
	j.count += uint64(len(es))
	return first, nil
}

// Get reads the entry of sequence number seq.
func (j *Journal) Get(seq uint64) (Entry, error) {
	if seq < 1 || seq > j.count {
		return Entry{}, fmt.Errorf("journal: get %d: out of range 1..%d", seq, j.count)
	}
	off, err := j.offset(seq)
	if err != nil {
		return Entry{}, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	var h [frameHead]byte
	if _, err := j.log.ReadAt(h[:], off); err != nil {
		return Entry{}, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	l := binary.LittleEndian.Uint32(h[:])
	if l < 32 || off+frameHead+int64(l) > j.end {
		return Entry{}, fmt.Errorf("journal: get %d: %w: bad record length %d", seq, ErrCorrupt, l)
	}
	body := make([]byte, l)
	if _, err := j.log.ReadAt(body, off+frameHead); err != nil {
		return Entry{}, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	if crc32.Checksum(body, crcT) != binary.LittleEndian.Uint32(h[4:]) {
		return Entry{}, fmt.Errorf("journal: get %d: %w: checksum mismatch", seq, ErrCorrupt)
	}
	var e Entry
	copy(e.ID[:], body)
	e.Payload = body[32:]
	return e, nil
}

// scanChunk is how much of the journal Scan reads at once.
const scanChunk = 4 << 20

// Scan calls f for the entries from..to in order, stopping at f's first
// error. It reads the journal in large chunks; an entry's payload aliases
// a chunk that is never reused, so f may keep it.
func (j *Journal) Scan(from, to uint64, f func(seq uint64, e Entry) error) error {
	if from < 1 || to > j.count || from > to {
		if from == to+1 {
			return nil
		}
		return fmt.Errorf("journal: scan %d..%d: out of range 1..%d", from, to, j.count)
	}
	off, err := j.offset(from)
	if err != nil {
		return fmt.Errorf("journal: scan from %d: %w", from, err)
	}
	var buf []byte // unparsed bytes of the current chunk
	for seq := from; seq <= to; seq++ {
		if len(buf) < frameHead || len(buf) < frameHead+int(binary.LittleEndian.Uint32(buf)) {
			// Read the next chunk, starting with what is left of this one.
			need := frameHead
			if len(buf) >= frameHead {
				need += int(binary.LittleEndian.Uint32(buf))
			}
			n := min(max(scanChunk, need), int(j.end-off)+len(buf))
			next := make([]byte, n)
			copy(next, buf)
			if _, err := j.log.ReadAt(next[len(buf):], off); err != nil {
				return fmt.Errorf("journal: read %d: %w", seq, err)
			}
			off += int64(n - len(buf))
			buf = next
		}
		if len(buf) < frameHead {
			return fmt.Errorf("journal: read %d: %w: truncated record", seq, ErrCorrupt)
		}
		l := int(binary.LittleEndian.Uint32(buf))
		if l < 32 || l > MaxRecord || len(buf) < frameHead+l {
			return fmt.Errorf("journal: read %d: %w: bad record length %d", seq, ErrCorrupt, l)
		}
		body := buf[frameHead : frameHead+l : frameHead+l]
		if crc32.Checksum(body, crcT) != binary.LittleEndian.Uint32(buf[4:]) {
			return fmt.Errorf("journal: read %d: %w: checksum mismatch", seq, ErrCorrupt)
		}
		buf = buf[frameHead+l:]
		var e Entry
		copy(e.ID[:], body)
		e.Payload = body[32:]
		if err := f(seq, e); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the files.
func (j *Journal) Close() error {
	return errors.Join(j.log.Close(), j.idx.Close())
}
