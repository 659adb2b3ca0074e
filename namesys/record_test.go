package namesys_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/internal/testdata"
	"rlog/internal/vfs/crashfs"
	"rlog/namesys"
	"rlog/pager"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// key derives a fixed Ed25519 key, so records are reproducible.
func key(t testing.TB, seed byte) (crypto.PrivKey, ipns.Name) {
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	name, err := namesys.NameOf(sk.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return sk, name
}

var (
	head, _ = pager.PagePrefix.Sum([]byte("head"))
	eol     = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	now     = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
)

func TestRecordRoundTripAndGolden(t *testing.T) {
	sk, name := key(t, 1)
	raw, err := namesys.NewRecord(sk, head, 7, eol, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := namesys.Parse(name, raw, now)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Value.Equals(head) || rec.Sequence != 7 || rec.TTL != time.Minute || !rec.Validity.Equal(eol) {
		t.Fatalf("parsed %+v", rec)
	}
	if *update {
		text := fmt.Sprintf("# V2 record: key seed 32 x 0x01, value /ipfs/%s, seq 7, eol %s, ttl 1m\n# name | hex\n%s | %x\n", head, eol.Format(time.RFC3339), name, raw)
		os.WriteFile(testdata.Path("ipns/record.txt"), []byte(text), 0o644)
	}
	row := testdata.Rows(t, "ipns/record.txt")[0]
	if row[0] != name.String() || row[1] != hex.EncodeToString(raw) {
		t.Fatalf("record encoding changed:\n got %s %x\nwant %s %s", name, raw, row[0], row[1])
	}
}

func TestParseRejects(t *testing.T) {
	sk, name := key(t, 1)
	other, _ := key(t, 2)
	good, _ := namesys.NewRecord(sk, head, 1, eol, time.Minute)
	byOther, _ := namesys.NewRecord(other, head, 1, eol, time.Minute)
	expired, _ := namesys.NewRecord(sk, head, 1, now.Add(-time.Hour), time.Minute)
	sub, _ := path.Join(path.FromCid(head), "e")
	ipnsValue, _ := ipns.NewRecord(sk, sub, 1, eol, time.Minute, ipns.WithV1Compatibility(false))
	notIPFS, _ := ipns.MarshalRecord(ipnsValue)
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-3] ^= 1
	cases := map[string]struct {
		raw  []byte
		want string
	}{
		"signed by another key": {byOther, "signature verification failed"},
		"expired":               {expired, "expired"},
		"value not /ipfs":       {notIPFS, "is not /ipfs/<CID>"},
		"garbage":               {[]byte("not a record"), "invalid ipns record"},
		"tampered":              {tampered, "invalid ipns record"},
		"oversized":             {make([]byte, 20<<10), "limit"},
	}
	for what, tc := range cases {
		_, err := namesys.Parse(name, tc.raw, now)
		if !errors.Is(err, namesys.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrInvalid containing %q", what, err, tc.want)
		}
	}
}

func TestDirPublishResolve(t *testing.T) {
	sk, name := key(t, 1)
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := namesys.Resolve(ctx, namesys.NewDir(dir, true), name, now); !errors.Is(err, namesys.ErrNotFound) {
		t.Fatalf("resolve before publish: %v", err)
	}
	raw, _ := namesys.NewRecord(sk, head, 3, eol, time.Minute)
	if err := namesys.NewDir(dir, true).Publish(ctx, name, raw); !errors.Is(err, namesys.ErrReadOnly) {
		t.Fatalf("publish on read-only dir: %v", err)
	}
	if err := namesys.NewDir(dir, false).Publish(ctx, name, raw); err != nil {
		t.Fatal(err)
	}
	rec, err := namesys.Resolve(ctx, namesys.NewDir(dir, true), name, now)
	if err != nil || rec.Sequence != 3 {
		t.Fatalf("resolve: %+v %v", rec, err)
	}
}

// A record published survives a power cut that keeps only what was
// synced, and so does the one that replaces it.
func TestDirPublishPowerCut(t *testing.T) {
	sk, name := key(t, 1)
	ctx := context.Background()
	fsys := crashfs.New()
	if err := fsys.MkdirAll("/repo/ipns", 0o755); err != nil {
		t.Fatal(err)
	}
	fsys.SyncAll()
	for seq := uint64(1); seq <= 2; seq++ {
		raw, _ := namesys.NewRecord(sk, head, seq, eol, time.Minute)
		if err := namesys.NewDirIn(fsys, "/repo/ipns", false).Publish(ctx, name, raw); err != nil {
			t.Fatal(err)
		}
		fsys = fsys.Reboot(nil)
		rec, err := namesys.Resolve(ctx, namesys.NewDirIn(fsys, "/repo/ipns", true), name, now)
		if err != nil || rec.Sequence != seq {
			t.Fatalf("after a power cut: %+v %v, want the record of sequence %d", rec, err, seq)
		}
	}
}

func TestCompare(t *testing.T) {
	sk, name := key(t, 1)
	other, _ := pager.PagePrefix.Sum([]byte("other head"))
	rec := func(seq uint64, value cid.Cid) *namesys.Record {
		raw, err := namesys.NewRecord(sk, value, seq, eol, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r, err := namesys.Parse(name, raw, now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cases := []struct {
		what      string
		held, got *namesys.Record
		want      error
	}{
		{"nothing held", nil, rec(2, head), nil},
		{"newer", rec(2, head), rec(3, other), nil},
		{"the same record", rec(2, head), rec(2, head), nil},
		{"held value unknown", &namesys.Record{Name: name, Sequence: 2}, rec(2, other), nil},
		{"older", rec(2, head), rec(1, head), namesys.ErrRollback},
		{"one sequence, two values", rec(2, head), rec(2, other), namesys.ErrFork},
	}
	for _, tc := range cases {
		err := namesys.Compare(tc.held, tc.got)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.what, err, tc.want)
		}
		if errors.Is(err, namesys.ErrFork) && (!strings.Contains(err.Error(), head.String()) || !strings.Contains(err.Error(), other.String())) {
			t.Errorf("%s: %v does not name both heads", tc.what, err)
		}
	}
}

// A Dir never replaces its record with an older one or a fork of it; it
// keeps a fork's other record as proof until a newer record supersedes both.
func TestDirKeepsForks(t *testing.T) {
	sk, name := key(t, 1)
	other, _ := pager.PagePrefix.Sum([]byte("other head"))
	ctx := context.Background()
	d := namesys.NewDir(t.TempDir(), false)
	mk := func(seq uint64, value cid.Cid) []byte {
		raw, err := namesys.NewRecord(sk, value, seq, eol, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	held := func() *namesys.Record {
		t.Helper()
		rec, err := namesys.Resolve(ctx, d, name, now)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	if err := d.Publish(ctx, name, mk(2, head)); err != nil {
		t.Fatal(err)
	}
	if err := d.Publish(ctx, name, mk(2, head)); err != nil {
		t.Fatalf("the same record again: %v", err)
	}
	if err := d.Publish(ctx, name, mk(1, other)); !errors.Is(err, namesys.ErrRollback) {
		t.Fatalf("older record: got %v, want ErrRollback", err)
	}
	if _, err := d.ResolveFork(ctx, name); !errors.Is(err, namesys.ErrNotFound) {
		t.Fatalf("fork before any: %v", err)
	}
	if err := d.Publish(ctx, name, mk(2, other)); !errors.Is(err, namesys.ErrFork) {
		t.Fatalf("forking record: got %v, want ErrFork", err)
	}
	if rec := held(); rec.Sequence != 2 || !rec.Value.Equals(head) {
		t.Fatalf("the held record changed: %d %s", rec.Sequence, rec.Value)
	}
	raw, err := d.ResolveFork(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if fork, err := namesys.Parse(name, raw, now); err != nil || !fork.Value.Equals(other) || fork.Sequence != 2 {
		t.Fatalf("fork proof: %+v %v", fork, err)
	}
	if err := d.Publish(ctx, name, []byte("not a record")); !errors.Is(err, namesys.ErrInvalid) {
		t.Fatalf("invalid record: got %v, want ErrInvalid", err)
	}
	if err := d.Publish(ctx, name, mk(3, other)); err != nil {
		t.Fatal(err)
	}
	if rec := held(); rec.Sequence != 3 {
		t.Fatalf("newer record not taken: %d", rec.Sequence)
	}
	if _, err := d.ResolveFork(ctx, name); !errors.Is(err, namesys.ErrNotFound) {
		t.Fatalf("fork after a newer record: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	_, name := key(f, 1)
	for _, row := range testdata.Rows(f, "ipns/record.txt") {
		b, _ := hex.DecodeString(row[1])
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := namesys.Parse(name, raw, now)
		if err == nil && !rec.Value.Defined() {
			t.Fatal("accepted a record without a value")
		}
	})
}
