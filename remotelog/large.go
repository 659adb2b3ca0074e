package remotelog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/mvds"
	"rlog/pager"
)

// A message whose wire payload is over LargeMessage bytes is large. It can
// never be inline in a page, so the writer stores its payload once, as a
// UnixFS file in the block store, when it is appended, and readers stream
// it to a file instead of holding it in memory. Its wire payload ends with
// its body (see mvds.WireHead).
const (
	LargeMessage = pager.MaxPageBytes
	// MaxBody bounds a message's body.
	MaxBody = 4 << 30
	// maxWireHead bounds what precedes the body in a wire payload.
	maxWireHead = 256 << 10
)

// copyPayload copies the payload file ref of size bytes from src to dst,
// verifying it on the way.
func copyPayload(ctx context.Context, dst, src cas.Store, ref cid.Cid, size uint64) error {
	r, _, err := cas.OpenPayload(ctx, cas.Verify(src), ref, size)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := cas.ImportPayload(ctx, dst, r)
	if err != nil {
		return err
	}
	if !c.Equals(ref) {
		return fmt.Errorf("copy payload %s: copied as %s", ref, c)
	}
	return nil
}

// openBody opens the body of the large message whose payload file is ref,
// at most limit bytes, and reads its head.
// Closing the reader ends the payload's background fetches.
func openBody(ctx context.Context, g cas.Getter, ref cid.Cid, limit uint64) (io.ReadCloser, mvds.Message, uint64, error) {
	r, size, err := cas.OpenPayload(ctx, g, ref, limit)
	if err != nil {
		return nil, mvds.Message{}, 0, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	m, n, err := mvds.ReadWireHead(br, size)
	if err != nil {
		r.Close()
		return nil, mvds.Message{}, 0, err
	}
	return struct {
		io.Reader
		io.Closer
	}{br, r}, m, n, nil
}

// spool reads the payload of a large message, size bytes from r, writes
// its body into a new file in dir, and checks that the message hashes to
// id. It returns the message (without its body), the body's size and the
// file.
func spool(r io.Reader, size uint64, id mvds.MessageID, dir string) (mvds.Message, uint64, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	m, n, err := mvds.ReadWireHead(br, size)
	if errors.Is(err, mvds.ErrMalformed) {
		return mvds.Message{}, 0, "", fmt.Errorf("%w: %w", ErrInvalidLog, err)
	} else if err != nil {
		return mvds.Message{}, 0, "", err // the source failed: it may pass
	}
	f, err := os.CreateTemp(dir, ".rlog-body-*")
	if err != nil {
		return mvds.Message{}, 0, "", fmt.Errorf("spool a large message: %w", err)
	}
	h := mvds.IDHash(m.GroupID, m.Timestamp)
	_, err = io.Copy(io.MultiWriter(f, h), br)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && mvds.MessageID(h.Sum(nil)) != id {
		err = fmt.Errorf("%w: id %s does not match its payload", ErrInvalidLog, id)
	}
	if err != nil {
		os.Remove(f.Name())
		return mvds.Message{}, 0, "", err
	}
	return m, n, f.Name(), nil
}
