package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// rlogIn runs rlog in-process with $RLOG_PATH set to repo.
func rlogIn(t *testing.T, repo string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := func(k string) string {
		if k == "RLOG_PATH" {
			return repo
		}
		return ""
	}
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, env)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	w, r := filepath.Join(t.TempDir(), "w"), filepath.Join(t.TempDir(), "r")
	if code, _, errs := rlogIn(t, w, "", "fetch", "k51"); code != exitUsage {
		t.Errorf("bad name: exit %d (%s)", code, errs)
	}
	if code, _, errs := rlogIn(t, w, "", "append", "x"); code != exitNotFound || !strings.Contains(errs, "rlog init") {
		t.Errorf("no repo: exit %d (%s)", code, errs)
	}
	_, name, _ := rlogIn(t, w, "", "init")
	name = strings.TrimSpace(name)
	rlogIn(t, r, "", "init")
	if code, _, errs := rlogIn(t, r, "", "fetch", name, "--from", w); code != exitNotFound || !strings.Contains(errs, "is not published at") {
		t.Errorf("unpublished log: exit %d (%s)", code, errs)
	}
	if code, _, errs := rlogIn(t, w, "", "publish"); code != exitError || !strings.Contains(errs, "the log is empty") {
		t.Errorf("empty publish: exit %d (%s)", code, errs)
	}
	if code, out, _ := rlogIn(t, w, "a\nb\n", "append"); code != exitOK || strings.Count(out, "\n") != 2 {
		t.Errorf("append from stdin: exit %d, %q", code, out)
	}
	if code, _, errs := rlogIn(t, w, "", "publish"); code != exitOK {
		t.Fatalf("publish: %s", errs)
	}
	if code, _, errs := rlogIn(t, w, "", "fetch", "--since", "1", "--all", name); code != exitUsage {
		t.Errorf("--since with --all: exit %d (%s)", code, errs)
	}
	if code, out, _ := rlogIn(t, r, "", "fetch", name, "--from", w); code != exitOK || !strings.Contains(out, "\ta\n") {
		t.Errorf("fetch: exit %d, %q", code, out)
	}
	if code, _, errs := rlogIn(t, w, "", "inspect", "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"); code != exitNotFound {
		t.Errorf("inspect of a missing block: exit %d (%s)", code, errs)
	}
}

// plain leaves out the library packages' names where they begin a part of
// an error's text, and nothing else.
func TestPlain(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"remotelog: restore: remotelog: f.car: not an rlog backup", "restore: f.car: not an rlog backup"},
		{"read k51: fetch page bafy: cas: car f.car: get bafy: file is cut short (unexpected EOF)", "read k51: fetch page bafy: car f.car: get bafy: file is cut short (unexpected EOF)"},
		{"log not published: namesys: resolve k51 in /x/ipns: no record for name", "log not published: resolve k51 in /x/ipns: no record for name"},
		{"failed (pager: page 3 malformed)", "failed (page 3 malformed)"},
		{"open /tmp/cas: no such file", "open /tmp/cas: no such file"},
		{"the cas: store", "the cas: store"},
		{"mvdsx: y", "mvdsx: y"},
	} {
		if got := plain(c.in); got != c.want {
			t.Errorf("plain(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
