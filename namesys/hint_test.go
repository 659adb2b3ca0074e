package namesys_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"

	"rlog/internal/testdata"
	"rlog/namesys"
	"rlog/pager"
)

var window, _ = pager.PagePrefix.Sum([]byte("window node"))

// TestRecordHint: a record made with a hint carries it signed, and Parse
// gives it back; a record without one gives none.
func TestRecordHint(t *testing.T) {
	sk, name := key(t, 1)
	raw, err := namesys.NewRecordHint(sk, head, 8, eol, time.Minute, namesys.Hint{PageStart: 769, Node: window})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := namesys.Parse(name, raw, now)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Hint.PageStart != 769 || rec.Hint.Node != window || rec.Sequence != 8 || rec.Value != head {
		t.Fatalf("parsed %+v", rec)
	}
	plain, _ := namesys.NewRecord(sk, head, 7, eol, time.Minute)
	if rec, err := namesys.Parse(name, plain, now); err != nil || rec.Hint.Node.Defined() {
		t.Fatalf("a record without a hint: %+v %v", rec, err)
	}
	// The hint is in the signed data: changing it breaks the signature.
	i := strings.Index(string(raw), string(window.Bytes()))
	if i < 0 {
		t.Fatal("the window node's CID is not in the record")
	}
	tampered := append([]byte(nil), raw...)
	tampered[i+len(window.Bytes())-1] ^= 1
	if _, err := namesys.Parse(name, tampered, now); !errors.Is(err, namesys.ErrInvalid) {
		t.Fatalf("a changed hint: %v", err)
	}
	if *update {
		text := fmt.Sprintf("# V2 record with a hint: key seed 32 x 0x01, value /ipfs/%s, seq 8, eol %s, ttl 1m, %s 769, %s %s\n# name | hex\n%s | %x\n",
			head, eol.Format(time.RFC3339), namesys.HintStartKey, namesys.HintNodeKey, window, name, raw)
		os.WriteFile(testdata.Path("ipns/record-hint.txt"), []byte(text), 0o644)
	}
	row := testdata.Rows(t, "ipns/record-hint.txt")[0]
	if row[0] != name.String() || row[1] != hex.EncodeToString(raw) {
		t.Fatalf("record encoding changed:\n got %s %x\nwant %s %s", name, raw, row[0], row[1])
	}
}

// signedWith is a record of key 1 signed with metadata md as it is.
func signedWith(t testing.TB, md map[string]any) []byte {
	sk, _ := key(t, 1)
	rec, err := ipns.NewRecord(sk, path.FromCid(head), 1, eol, time.Minute, ipns.WithV1Compatibility(false), ipns.WithMetadata(md))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestHintRejects(t *testing.T) {
	_, name := key(t, 1)
	for what, tc := range map[string]struct {
		md   map[string]any
		want string
	}{
		"start alone":       {map[string]any{namesys.HintStartKey: int64(5)}, "come together"},
		"node alone":        {map[string]any{namesys.HintNodeKey: window.Bytes()}, "come together"},
		"start as text":     {map[string]any{namesys.HintStartKey: "5", namesys.HintNodeKey: window.Bytes()}, "not an integer"},
		"node as text":      {map[string]any{namesys.HintStartKey: int64(5), namesys.HintNodeKey: window.String()}, "not bytes"},
		"node not a CID":    {map[string]any{namesys.HintStartKey: int64(5), namesys.HintNodeKey: []byte("window")}, "not a binary CID"},
		"node with a tail":  {map[string]any{namesys.HintStartKey: int64(5), namesys.HintNodeKey: append(window.Bytes(), 0)}, "not a binary CID"},
		"node empty":        {map[string]any{namesys.HintStartKey: int64(5), namesys.HintNodeKey: []byte{}}, "not a binary CID"},
		"raw node":          {map[string]any{namesys.HintStartKey: int64(5), namesys.HintNodeKey: rawCID().Bytes()}, "not a DAG-CBOR"},
		"start 1":           {map[string]any{namesys.HintStartKey: int64(1), namesys.HintNodeKey: window.Bytes()}, "impossible"},
		"start negative":    {map[string]any{namesys.HintStartKey: int64(-3), namesys.HintNodeKey: window.Bytes()}, "not a sequence number"},
		"start beyond 2^62": {map[string]any{namesys.HintStartKey: int64(1<<62 + 1), namesys.HintNodeKey: window.Bytes()}, "impossible"},
	} {
		_, err := namesys.Parse(name, signedWith(t, tc.md), now)
		if !errors.Is(err, namesys.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrInvalid containing %q", what, err, tc.want)
		}
	}
	// Other metadata is no hint and is let be.
	if rec, err := namesys.Parse(name, signedWith(t, map[string]any{"_other": "x"}), now); err != nil || rec.Hint.Node.Defined() {
		t.Errorf("other metadata: %+v %v", rec, err)
	}
	sk, _ := key(t, 1)
	if _, err := namesys.NewRecordHint(sk, head, 1, eol, time.Minute, namesys.Hint{PageStart: 1, Node: window}); err == nil {
		t.Error("a record made with an impossible hint")
	}
}

func rawCID() interface{ Bytes() []byte } {
	c, _ := pager.RawPrefix.Sum([]byte("payload"))
	return c
}

// FuzzHint: records signed with any hint values, of any of the types
// IPNS metadata takes, parse or are refused with ErrInvalid; what parses
// is a hint a writer could have made, and it is what was signed.
func FuzzHint(f *testing.F) {
	f.Add(uint8(0), int64(769), window.Bytes(), "")
	f.Add(uint8(1), int64(5), []byte("x"), "5")
	f.Add(uint8(2), int64(-1), head.Bytes(), "")
	_, name := key(f, 1)
	f.Fuzz(func(t *testing.T, kinds uint8, start int64, node []byte, text string) {
		md := map[string]any{}
		switch kinds % 3 { // the start as an integer, text or bytes
		case 0:
			md[namesys.HintStartKey] = start
		case 1:
			md[namesys.HintStartKey] = text
		}
		switch kinds / 3 % 3 { // the node as bytes, text or absent
		case 0:
			md[namesys.HintNodeKey] = node
		case 1:
			md[namesys.HintNodeKey] = text
		}
		rec, err := namesys.Parse(name, signedWith(t, md), now)
		if err != nil {
			if !errors.Is(err, namesys.ErrInvalid) {
				t.Fatalf("refused without ErrInvalid: %v", err)
			}
			return
		}
		if !rec.Hint.Node.Defined() {
			if len(md) == 2 {
				t.Fatalf("both keys, no hint: %v", md)
			}
			return
		}
		if kinds%9 != 0 || rec.Hint.PageStart != uint64(start) || string(rec.Hint.Node.Bytes()) != string(node) || rec.Hint.PageStart < 2 || rec.Hint.Node.Prefix() != pager.PagePrefix {
			t.Fatalf("hint %+v from %v", rec.Hint, md)
		}
	})
}
