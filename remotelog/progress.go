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
// cursor it saved. Each record is one write of 48 bytes: sequence (8, big
// endian), message id (32), CRC-32C of both (4), 4 zero bytes. A write a
// process is killed in the middle of is not possible (the kernel completes
// it); a record torn by a power loss fails its CRC and is ignored, and the
// cursor before it is used. The progress file is folded into the cursor
// and emptied when the catch-up saves its cursor.
const progressRecord = 48

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (s CursorStore) progressPath(name ipns.Name) string {
	return filepath.Join(s.dir, name.String()+".progress")
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

// Delivered records that message seq, id was delivered.
func (p *Progress) Delivered(seq uint64, id mvds.MessageID) error {
	b := p.buf[:]
	binary.BigEndian.PutUint64(b[0:8], seq)
	copy(b[8:40], id[:])
	binary.BigEndian.PutUint32(b[40:44], crc32.Checksum(b[:40], crcTable))
	if _, err := p.f.Write(b); err != nil {
		return fmt.Errorf("remotelog: progress: %w", err)
	}
	return nil
}

// Close closes the file; it stays until Save folds it into the cursor.
func (p *Progress) Close() error { return p.f.Close() }

// withProgress is c moved on to the last message the progress file of
// name records, when it is past c.
func (s CursorStore) withProgress(name ipns.Name, c Cursor) (Cursor, error) {
	b, err := os.ReadFile(s.progressPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("remotelog: read progress: %w", err)
	}
	for n := len(b) / progressRecord; n > 0; n-- {
		r := b[(n-1)*progressRecord : n*progressRecord]
		if crc32.Checksum(r[:40], crcTable) != binary.BigEndian.Uint32(r[40:44]) {
			continue
		}
		if seq := binary.BigEndian.Uint64(r[0:8]); seq > c.Seq {
			c.Seq = seq
			copy(c.ID[:], r[8:40])
		}
		break
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
