package remotelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/boxo/ipns"

	"rlog/mvds"
)

// A progress file keeps how far a catch-up has delivered while it runs,
// one record per message, so that a reader killed at any moment starts
// again after the last message it delivered rather than after the last
// cursor it saved. Each record is one write of 64 bytes: sequence (8, big
// endian), message id (32), the output mark (offset 8, file 8; see
// OutputMark), CRC-32C of all that (4), and "rlp2". A write a process is
// killed in the middle of is not possible (the kernel completes it); a
// record torn by a power loss fails its CRC and is ignored, and the one
// before it is used. Records of 48 bytes (sequence, id, CRC, 4 zero bytes,
// no output mark), from before the mark, are still read. The progress file
// is folded into the cursor and emptied when the catch-up saves its cursor.
const (
	progressRecord   = 64
	progressRecordV1 = 48
	progressMagic    = "rlp2"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (s CursorStore) progressPath(name ipns.Name) string {
	return filepath.Join(s.dir, name.String()+".progress")
}

// OutputMark is where the output of a reader stood after it delivered a
// message: File names the regular file its lines went to (device and inode
// folded into a number; 0 when the output is not a regular file, a pipe or
// a terminal) and Offset is that file's size just after the message's
// line. A reader that finds the file grown past the last mark knows that
// what follows was printed but not recorded, and need not print it again.
type OutputMark struct {
	File   uint64
	Offset int64
}

// ProgressEntry is the last record of a progress file.
type ProgressEntry struct {
	Seq uint64
	ID  mvds.MessageID
	Out OutputMark
}

// Progress is an open progress file of one log.
type Progress struct {
	f    *os.File
	base Cursor
	buf  [progressRecord]byte
}

// Progress opens the progress file of log name, for a catch-up that starts
// at base (the cursor Get returned).
func (s CursorStore) Progress(name ipns.Name, base Cursor) (*Progress, error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("remotelog: progress: %w", err)
	}
	f, err := os.OpenFile(s.progressPath(name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("remotelog: progress: %w", err)
	}
	return &Progress{f: f, base: base}, nil
}

// Start records where the output stands before the first message: a
// reader killed before it records one finds there what it printed.
func (p *Progress) Start(out OutputMark) error {
	return p.DeliveredTo(p.base.Seq, p.base.ID, out)
}

// Delivered records that message seq, id was delivered.
func (p *Progress) Delivered(seq uint64, id mvds.MessageID) error {
	return p.DeliveredTo(seq, id, OutputMark{})
}

// DeliveredTo records that message seq, id was delivered and where the
// output stood after it.
func (p *Progress) DeliveredTo(seq uint64, id mvds.MessageID, out OutputMark) error {
	b := p.buf[:]
	binary.BigEndian.PutUint64(b[0:8], seq)
	copy(b[8:40], id[:])
	binary.BigEndian.PutUint64(b[40:48], uint64(out.Offset))
	binary.BigEndian.PutUint64(b[48:56], out.File)
	binary.BigEndian.PutUint32(b[56:60], crc32.Checksum(b[:56], crcTable))
	copy(b[60:64], progressMagic)
	if _, err := p.f.Write(b); err != nil {
		return fmt.Errorf("remotelog: progress: %w", err)
	}
	return nil
}

// Close closes the file; it stays until Save folds it into the cursor.
func (p *Progress) Close() error { return p.f.Close() }

// LastProgress is the last valid record of the progress file of log name;
// ok is false when it has none (the file is empty, or every record is
// torn).
func (s CursorStore) LastProgress(name ipns.Name) (e ProgressEntry, ok bool, err error) {
	b, err := os.ReadFile(s.progressPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("remotelog: read progress: %w", err)
	}
	e, ok = lastProgress(b)
	return e, ok, nil
}

// lastProgress is the last record of b that checks, in the current form
// or, when b has none, in the form before output marks.
func lastProgress(b []byte) (e ProgressEntry, ok bool) {
	for n := len(b) / progressRecord; n > 0; n-- {
		r := b[(n-1)*progressRecord : n*progressRecord]
		if string(r[60:64]) != progressMagic || crc32.Checksum(r[:56], crcTable) != binary.BigEndian.Uint32(r[56:60]) {
			continue
		}
		e.Seq = binary.BigEndian.Uint64(r[0:8])
		copy(e.ID[:], r[8:40])
		e.Out = OutputMark{Offset: int64(binary.BigEndian.Uint64(r[40:48])), File: binary.BigEndian.Uint64(r[48:56])}
		return e, true
	}
	for n := len(b) / progressRecordV1; n > 0; n-- {
		r := b[(n-1)*progressRecordV1 : n*progressRecordV1]
		if crc32.Checksum(r[:40], crcTable) != binary.BigEndian.Uint32(r[40:44]) {
			continue
		}
		e.Seq = binary.BigEndian.Uint64(r[0:8])
		copy(e.ID[:], r[8:40])
		return e, true
	}
	return e, false
}

// withProgress is c moved on to the last message the progress file of
// name records, when it is past c.
func (s CursorStore) withProgress(name ipns.Name, c Cursor) (Cursor, error) {
	e, ok, err := s.LastProgress(name)
	if err != nil {
		return c, err
	}
	if ok && e.Seq > c.Seq {
		c.Seq, c.ID = e.Seq, e.ID
	}
	return c, nil
}

// dropProgress empties the progress file once a cursor that includes it is
// saved. It is emptied, not removed, so that a Progress still open (a
// follower's) goes on recording in it.
func (s CursorStore) dropProgress(name ipns.Name) error {
	if err := os.Truncate(s.progressPath(name), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remotelog: drop progress: %w", err)
	}
	return nil
}
