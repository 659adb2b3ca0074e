package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skip2/go-qrcode"
)

// artBitmap reads back the modules of QR art drawn by qrArt: each
// character is two modules, one above the other; a dark module is blank.
func artBitmap(t *testing.T, art string) [][]bool {
	t.Helper()
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimSuffix(art, "\n"), "\n") {
		var top, bottom []bool
		for _, c := range line {
			switch c {
			case ' ':
				top, bottom = append(top, true), append(bottom, true)
			case '█':
				top, bottom = append(top, false), append(bottom, false)
			case '▄':
				top, bottom = append(top, true), append(bottom, false)
			case '▀':
				top, bottom = append(top, false), append(bottom, true)
			default:
				t.Fatalf("QR art holds %q", c)
			}
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

// TestShareQR: --qr prints the link, then QR art that is, module for
// module, the QR code of the link (its quiet zone included); none without
// a terminal unless asked, none with --no-qr, --json refuses --qr.
func TestShareQR(t *testing.T) {
	w := filepath.Join(t.TempDir(), "w")
	if code, _, errs := rlogIn(t, w, "", "init", "--private"); code != exitOK {
		t.Fatalf("init: %s", errs)
	}
	code, out, errs := rlogIn(t, w, "", "share", "--qr")
	if code != exitOK {
		t.Fatalf("share --qr: exit %d: %s", code, errs)
	}
	link, art, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(link, "rlog://k51") {
		t.Fatalf("first line %q, want the link", link)
	}
	q, err := qrcode.New(link, qrLevel)
	if err != nil {
		t.Fatal(err)
	}
	want := q.Bitmap()
	got := artBitmap(t, art)
	if len(want)%2 == 1 {
		got = got[:len(got)-1] // the last line's lower half is padding
	}
	if len(got) != len(want) {
		t.Fatalf("art of %d module rows, the link's code has %d", len(got), len(want))
	}
	for y := range want {
		if len(got[y]) != len(want[y]) {
			t.Fatalf("row %d: %d modules, want %d", y, len(got[y]), len(want[y]))
		}
		for x := range want[y] {
			if got[y][x] != want[y][x] {
				t.Fatalf("module (%d, %d) differs from the link's code", x, y)
			}
		}
	}
	// The code holds the link: another link draws another code.
	other, _ := qrArt(link + "x")
	if other == art {
		t.Fatal("two links drew the same code")
	}

	for _, args := range [][]string{{"share"}, {"share", "--no-qr"}} {
		_, out, _ := rlogIn(t, w, "", args...)
		if strings.TrimSpace(out) != link {
			t.Errorf("%v printed %q, want the link alone", args, out)
		}
	}
	_, out, _ = rlogIn(t, w, "", "share", "--json")
	var j map[string]any
	if err := json.Unmarshal([]byte(out), &j); err != nil || j["link"] != link {
		t.Errorf("share --json: %q (%v)", out, err)
	}
	if code, _, _ := rlogIn(t, w, "", "share", "--json", "--qr"); code != exitUsage {
		t.Errorf("share --json --qr: exit %d, want %d", code, exitUsage)
	}
}
