package cas_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
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

// A file that is not a CAR is said to be one, not a CAR cut short; a CAR
// cut in its header is cut short; both through the file and the stream.
func TestCARNotACAR(t *testing.T) {
	ctx := context.Background()
	b := blocks.NewBlock([]byte("a block of the log"))
	car, err := cas.CARv1(ctx, b.Cid(), []blocks.Block{b})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, cas.ErrNotCAR},
		{"text", []byte("hello, this is not a backup\n"), cas.ErrNotCAR},
		{"random", []byte{0x96, 0x1f, 0x03, 0xff, 0x00, 0x42, 0x99, 0x10, 0x07, 0x88, 0x31, 0x02}, cas.ErrNotCAR},
		{"huge header length", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0xa2}, cas.ErrNotCAR},
		{"one byte of a CAR", car[:1], cas.ErrTruncated},
		{"header cut", car[:5], cas.ErrTruncated},
		{"blocks cut", car[:len(car)-3], cas.ErrTruncated},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.car")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := cas.OpenCAR(path)
			if err == nil {
				_, err = f.Get(ctx, b.Cid())
				f.Close()
			}
			if !errors.Is(err, c.want) {
				t.Errorf("OpenCAR: %v, want %v", err, c.want)
			}
			var cut *cas.TruncatedError
			if c.want == cas.ErrTruncated && (!errors.As(err, &cut) || cut.Path != path || cut.Size != int64(len(c.data))) {
				t.Errorf("OpenCAR of a cut file: %v does not say where it ends (%d) as a TruncatedError: %+v", err, len(c.data), cut)
			}
			if c.name == "blocks cut" && cut != nil && cut.Block != b.Cid() {
				t.Errorf("blocks cut: the block cut is %v, want %v", cut.Block, b.Cid())
			}
			_, _, err = cas.ImportCAR(ctx, cas.NewMemory(), bytes.NewReader(c.data))
			if c.want == cas.ErrNotCAR && !errors.Is(err, c.want) {
				t.Errorf("ImportCAR: %v, want %v", err, c.want)
			}
			if c.want == cas.ErrTruncated && err == nil {
				t.Errorf("ImportCAR of a cut file: no error")
			}
		})
	}
	f, err := os.CreateTemp(t.TempDir(), "*.car")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(car)
	f.Close()
	cf, err := cas.OpenCAR(f.Name())
	if err != nil {
		t.Fatalf("a whole CAR: %v", err)
	}
	defer cf.Close()
	if _, err := cf.Get(ctx, b.Cid()); err != nil {
		t.Fatalf("a whole CAR: %v", err)
	}
}
