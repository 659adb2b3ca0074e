package remotelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"rlog/internal/atomicfile"
)

// deliveredFile keeps the ids and heights of a group's messages delivered
// lately: 40-byte records (id, then height little-endian) appended and
// synced as they are delivered. When it holds twice its window, it is
// rewritten with the newest window only, atomically (a new file renamed
// over it): a crash leaves either the old file or the new one, and a torn
// last record of an append is dropped. Its size is bounded by 80 bytes
// times the window, however long the group lives.
type deliveredFile struct {
	path   string
	window int
	n      int // records in the file, once loaded or appended to
}

const deliveredRecord = 40

// load reads the newest window of records.
func (f *deliveredFile) load() ([]knownID, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("remotelog: read the group's delivered messages: %w", err)
	}
	f.n = len(b) / deliveredRecord
	b = b[:f.n*deliveredRecord]
	if f.window > 0 && f.n > f.window {
		b = b[(f.n-f.window)*deliveredRecord:]
	}
	out := make([]knownID, 0, len(b)/deliveredRecord)
	for ; len(b) >= deliveredRecord; b = b[deliveredRecord:] {
		var k knownID
		copy(k.id[:], b)
		k.height = binary.LittleEndian.Uint64(b[32:deliveredRecord])
		out = append(out, k)
	}
	return out, nil
}

func encodeKnown(ks []knownID) []byte {
	buf := make([]byte, 0, deliveredRecord*len(ks))
	for _, k := range ks {
		buf = append(buf, k.id[:]...)
		buf = binary.LittleEndian.AppendUint64(buf, k.height)
	}
	return buf
}

// append adds ks, durably, and compacts the file when it holds twice its
// window.
func (f *deliveredFile) append(ks []knownID) error {
	if len(ks) == 0 {
		return nil
	}
	if err := f.appendRecords(ks); err != nil {
		return fmt.Errorf("remotelog: save the group's delivered messages: %w", err)
	}
	if f.window > 0 && f.n >= 2*f.window {
		return f.compact()
	}
	return nil
}

func (f *deliveredFile) appendRecords(ks []knownID) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return err
	}
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// Cut a torn record a crash left, so records stay aligned.
	fi, err := fh.Stat()
	if err == nil && fi.Size()%deliveredRecord != 0 {
		err = fh.Truncate(fi.Size() - fi.Size()%deliveredRecord)
	}
	if err == nil {
		f.n = int(fi.Size() / deliveredRecord)
		_, err = fh.Write(encodeKnown(ks))
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		f.n += len(ks)
	}
	return err
}

// compact rewrites the file with its newest window of records.
func (f *deliveredFile) compact() error {
	ks, err := f.load()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(f.path, encodeKnown(ks), 0o644); err != nil {
		return fmt.Errorf("remotelog: compact the group's delivered messages: %w", err)
	}
	f.n = len(ks)
	return nil
}
