package cas

import (
	"context"
	"fmt"
	"io"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
)

// ImportCAR reads a CAR file (v1 or v2), verifying every block's hash, and
// puts its blocks into s in batches. It returns the file's roots and the
// number of blocks.
func ImportCAR(ctx context.Context, s Store, r io.Reader) ([]cid.Cid, int, error) {
	br, err := carv2.NewBlockReader(r)
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
		batch = append(batch, b)
		size += len(b.RawData())
		n++
		if size >= 16<<20 {
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
