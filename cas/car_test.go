package cas_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	blocks "github.com/ipfs/go-block-format"

	"rlog/cas"
)

// A CAR file with a damaged block is refused with ErrHashMismatch, and
// the block is not stored.
func TestImportCARHashMismatch(t *testing.T) {
	ctx := context.Background()
	b := blocks.NewBlock([]byte("a block of the log"))
	car, err := cas.CARv1(ctx, b.Cid(), []blocks.Block{b})
	if err != nil {
		t.Fatal(err)
	}
	s := cas.NewMemory()
	if _, n, err := cas.ImportCAR(ctx, s, bytes.NewReader(car)); err != nil || n != 1 {
		t.Fatalf("intact file: %d blocks, %v", n, err)
	}
	bad := bytes.Replace(car, []byte("a block"), []byte("A block"), 1)
	s = cas.NewMemory()
	_, _, err = cas.ImportCAR(ctx, s, bytes.NewReader(bad))
	if !errors.Is(err, cas.ErrHashMismatch) {
		t.Fatalf("damaged file: got %v, want ErrHashMismatch", err)
	}
	if ok, _ := s.Has(ctx, b.Cid()); ok {
		t.Fatal("a damaged block was stored")
	}
}
