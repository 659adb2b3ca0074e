package remotelog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"rlog/namesys"
	"rlog/remotelog"
)

// TestReadPlainCAR: a CAR of a log's head DAG alone, as `ipfs dag export
// HEAD` and a gateway's ?format=car write it, is not a backup: reading it
// by name says what a backup is and what this file holds; given the
// record apart, or a head the reader vouches for, it reads.
func TestReadPlainCAR(t *testing.T) {
	_, hs, res, name := linkedServed(t, 12)
	_, car := httpGet(t, hs.URL+"/ipfs/"+res.Head.String()+"?format=car")
	_, record := httpGet(t, hs.URL+"/ipns/"+name.String()+"?format=ipns-record")
	path := filepath.Join(t.TempDir(), "export.car")
	if err := os.WriteFile(path, car, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := remotelog.OpenCARSource(ctx, path); !errors.Is(err, remotelog.ErrNotBackup) || !strings.Contains(err.Error(), "has 1 root ("+res.Head.String()+")") {
		t.Fatalf("open as a backup: %v", err)
	}
	src, err := remotelog.OpenSource(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, _, err = readAll(t, src, name, remotelog.Cursor{}, remotelog.ReadOptions{})
	if !errors.Is(err, remotelog.ErrNotBackup) || !errors.Is(err, namesys.ErrNotFound) || !strings.Contains(err.Error(), "2 roots") {
		t.Fatalf("read by name alone: %v", err)
	}
	got, _, err := readAll(t, remotelog.WithRecord(src, name, record), name, remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil || len(got) != 12 {
		t.Fatalf("read with the record: %d messages, %v", len(got), err)
	}
	got, _, err = readAll(t, src, name, remotelog.Cursor{}, remotelog.ReadOptions{Head: res.Head})
	if err != nil || len(got) != 12 {
		t.Fatalf("read from a vouched head: %d messages, %v", len(got), err)
	}
	// A record that is not the name's is refused, as from any source.
	bad := append([]byte{}, record...)
	bad[len(bad)/2] ^= 1
	if _, _, err := readAll(t, remotelog.WithRecord(src, name, bad), name, remotelog.Cursor{}, remotelog.ReadOptions{}); !errors.Is(err, namesys.ErrInvalid) {
		t.Fatalf("a damaged record: %v", err)
	}
}
