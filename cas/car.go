package cas

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	carbs "github.com/ipld/go-car/v2/blockstore"
)

// ImportCAR reads a CAR file (v1 or v2), verifying every block's hash, and
// puts its blocks into s in batches. It returns the file's roots and the
// number of blocks.
func ImportCAR(ctx context.Context, s Store, r io.Reader) ([]cid.Cid, int, error) {
	br0 := bufio.NewReader(r)
	start, _ := br0.Peek(carStartLen)
	if err := sniffCAR(start); err != nil {
		return nil, 0, fmt.Errorf("cas: read car: %w", err)
	}
	// Hashes are checked here, so that a damaged file is ErrHashMismatch.
	br, err := carv2.NewBlockReader(br0, carv2.WithTrustedCAR(true))
	if err != nil {
		return nil, 0, fmt.Errorf("cas: read car: %w", err)
	}
	n := 0
	var batch []blocks.Block
	size := 0
	for {
		b, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, n, fmt.Errorf("cas: read car: block %d: %w", n, err)
		}
		if err := Check(b.Cid(), b.RawData()); err != nil {
			return nil, n, fmt.Errorf("cas: read car: block %d: %w", n, err)
		}
		batch = append(batch, b)
		size += len(b.RawData())
		n++
		if size >= PutBatch {
			if err := s.Put(ctx, batch); err != nil {
				return nil, n, err
			}
			batch, size = nil, 0
		}
	}
	if err := s.Put(ctx, batch); err != nil {
		return nil, n, err
	}
	return br.Roots, n, nil
}

// carStartLen is how much of a file sniffCAR looks at: the longest
// varint and the header's first byte.
const carStartLen = binary.MaxVarintLen64 + 1

// maxCARHeader is the largest header length a CAR file may give: go-car's
// own default limit.
const maxCARHeader = 32 << 20

// sniffCAR says whether a file beginning with start can be a CAR file (v1
// or v2: v2 begins with its pragma, a v1 header): a header length within
// limits, then a header that is a CBOR map. Random bytes, text or another
// format are ErrNotCAR, so that they are not reported as a CAR cut short;
// a file too short to tell is ErrTruncated.
func sniffCAR(start []byte) error {
	if len(start) == 0 {
		return fmt.Errorf("%w: the file is empty", ErrNotCAR)
	}
	l, n := binary.Uvarint(start)
	switch {
	case n == 0 && len(start) < binary.MaxVarintLen64:
		return ErrTruncated
	case n <= 0:
		return fmt.Errorf("%w: it does not begin with a header length", ErrNotCAR)
	case l == 0 || l > maxCARHeader:
		return fmt.Errorf("%w: it begins with a header length of %d bytes", ErrNotCAR, l)
	case n == len(start):
		return ErrTruncated
	case start[n]>>5 != 5: // CBOR major type 5, a map
		return fmt.Errorf("%w: its header is not a CBOR map (byte 0x%02x)", ErrNotCAR, start[n])
	}
	return nil
}

// TruncatedError is ErrTruncated for a CAR file: where the file ends and,
// when known, the block it ends in. Its text is ErrTruncated's.
type TruncatedError struct {
	Path  string
	Size  int64   // the file's length: where it was cut
	Block cid.Cid // the block cut short, when known
}

func (e *TruncatedError) Error() string        { return ErrTruncated.Error() }
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }

// CARFile is a read-only Store over a CAR file (v1 or v2), indexed when
// opened. Its blocks are not trusted: readers wrap it in Verify.
type CARFile struct {
	path string
	size int64
	f    *os.File
	ro   *carbs.ReadOnly
}

// OpenCAR opens a CAR file as a read-only store. It reads the file with
// ordinary reads rather than mapping it, so a large backup does not count
// against the process's memory.
func OpenCAR(path string) (*CARFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cas: open car %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cas: open car %s: %w", path, err)
	}
	cut := &TruncatedError{Path: path, Size: fi.Size()}
	start := make([]byte, carStartLen)
	n, _ := f.ReadAt(start, 0)
	if err := sniffCAR(start[:n]); err != nil {
		f.Close()
		if errors.Is(err, ErrTruncated) {
			err = cut
		}
		return nil, fmt.Errorf("cas: open car %s: %w", path, err)
	}
	ro, err := carbs.NewReadOnly(f, nil)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// The header or the index ends before it should.
		f.Close()
		return nil, fmt.Errorf("cas: open car %s: %w (%w)", path, cut, err)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cas: open car %s: %w", path, err)
	}
	return &CARFile{path: path, size: fi.Size(), f: f, ro: ro}, nil
}

// Roots are the file's roots.
func (f *CARFile) Roots() ([]cid.Cid, error) { return f.ro.Roots() }

func (f *CARFile) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := f.ro.Get(ctx, c)
	if err != nil {
		if ipld.IsNotFound(err) {
			return nil, fmt.Errorf("cas: car %s: get %s: %w", f.path, c, ErrNotFound)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("cas: car %s: get %s: %w (%w)", f.path, c, &TruncatedError{Path: f.path, Size: f.size, Block: c}, err)
		}
		return nil, fmt.Errorf("cas: car %s: get %s: %w", f.path, c, err)
	}
	return b.RawData(), nil
}

func (f *CARFile) Has(ctx context.Context, c cid.Cid) (bool, error) { return f.ro.Has(ctx, c) }

func (f *CARFile) Put(context.Context, []blocks.Block) error {
	return fmt.Errorf("cas: car %s: put: %w", f.path, ErrReadOnly)
}

// Close releases the file.
func (f *CARFile) Close() error { return errors.Join(f.ro.Close(), f.f.Close()) }
