package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"rlog/cas"
	"rlog/namesys"
	"rlog/remotelog"
)

// FuzzCARSource feeds any bytes to everything that reads a backup file:
// OpenCARSource, then Check and a reader over it, and Restore into memory.
// None may panic, and each ends on its own: the context's deadline is only
// a safety net, and reaching it fails. Seeds (testdata/fuzz/FuzzCARSource)
// are a good backup, the same cut short, and the hostile logs of
// TestHugePageNumber and TestNestedPointerPayload as backups.
func FuzzCARSource(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "log.car")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		hung := func(what string, err error) {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s ran for 30 s: %v", what, err)
			}
		}
		if src, err := remotelog.OpenCARSource(ctx, path); err == nil {
			cs := src.(*remotelog.CARSource)
			rep := remotelog.Check(ctx, cs, cs.Name(), cs.Head, hostileNow)
			for _, fd := range rep.Findings {
				hung("check", fd.Err())
			}
			_, _, err := remotelog.CatchUp(ctx, cs, cs.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: hostileNow, SpoolDir: dir}, func(remotelog.Message) error { return nil })
			hung("read", err)
			src.Close()
		}
		_, err := remotelog.Restore(ctx, bytes.NewReader(b), cas.NewMemory(), namesys.NewMemory(), hostileNow)
		hung("restore", err)
	})
}
