package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/remotelog"
)

// marker is the text the private messages carry and no stored or served
// byte may.
const marker = "PRIVATE-MARKER-4b1d9e"

// privateBodies are n 256-byte bodies carrying the marker, and a 2 MiB
// file body (a large message) carrying it throughout.
func privateBodies(t testing.TB, n int) ([][]byte, string, []byte) {
	bodies := make([][]byte, n)
	for i := range bodies {
		b := []byte(fmt.Sprintf("%s message %04d ", marker, i))
		for len(b) < 256 {
			b = append(b, byte('a'+(i+len(b))%26))
		}
		bodies[i] = b
	}
	large := bytes.Repeat([]byte(marker+" large body "), (2<<20)/33+1)
	path := filepath.Join(t.TempDir(), "large")
	if err := os.WriteFile(path, large, 0o644); err != nil {
		t.Fatal(err)
	}
	return bodies, path, large
}

// appendPrivate seals and appends bodies and the file at path.
func appendPrivate(t testing.TB, w *remotelog.Writer, k *remotelog.Keyring, g []byte, bodies [][]byte, path string) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(bodies); i += 100 {
		var sealed [][]byte
		for _, b := range bodies[i:min(i+100, len(bodies))] {
			s, err := k.Seal(g, b)
			if err != nil {
				t.Fatal(err)
			}
			sealed = append(sealed, s)
		}
		if _, err := w.Append(ctx, g, sealed); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := k.SealFile(g, path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(sp)
	if _, err := w.AppendFile(ctx, g, sp); err != nil {
		t.Fatal(err)
	}
}

// readPrivate reads log w from src through Opening(k), bodies of large
// messages read from their files.
func readPrivate(t testing.TB, src remotelog.Source, w *remotelog.Writer, k *remotelog.Keyring) ([][]byte, error) {
	t.Helper()
	var got [][]byte
	_, _, err := remotelog.CatchUp(context.Background(), src, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{SpoolDir: t.TempDir()},
		remotelog.Opening(k, func(m remotelog.Message) error {
			b := m.Body
			if m.BodyFile != "" {
				var err error
				if b, err = os.ReadFile(m.BodyFile); err != nil {
					return err
				}
			}
			got = append(got, b)
			return nil
		}))
	return got, err
}

func checkPrivateRead(t testing.TB, src remotelog.Source, w *remotelog.Writer, k *remotelog.Keyring, bodies [][]byte, large []byte) {
	t.Helper()
	got, err := readPrivate(t, src, w, k)
	if err != nil || len(got) != len(bodies)+1 {
		t.Fatalf("read with the key: %d messages, %v", len(got), err)
	}
	for i, b := range bodies {
		if !bytes.Equal(got[i], b) {
			t.Fatalf("message %d: %q, want %q", i+1, got[i], b)
		}
	}
	if !bytes.Equal(got[len(bodies)], large) {
		t.Fatalf("the large message: %d bytes, want %d", len(got[len(bodies)]), len(large))
	}
	// Without the key, or with another, nothing is delivered.
	for _, c := range []struct {
		k    *remotelog.Keyring
		want error
	}{{nil, remotelog.ErrPrivate}, {newKeyring(t), remotelog.ErrDecrypt}} {
		got, err := readPrivate(t, src, w, c.k)
		if !errors.Is(err, c.want) || len(got) != 0 {
			t.Fatalf("read with key %v: %d messages delivered, %v; want %v", c.k, len(got), err, c.want)
		}
	}
}

func noMarker(t testing.TB, where string, b []byte) {
	t.Helper()
	if bytes.Contains(b, []byte(marker)) {
		t.Fatalf("the marker is in %s", where)
	}
}

// TestPrivateMarkerNowhere: 1,000 private messages and a large one are
// published; the marker is in no block of the embedded store, not in the
// CAR backup, not in anything 'rlog serve' returns; the reader with the
// key reads every message byte for byte, one without it nothing.
// storeBlocks calls f with every block of repo's embedded store.
func storeBlocks(t testing.TB, repo *remotelog.Repo, f func(cid.Cid, []byte)) {
	t.Helper()
	ctx := context.Background()
	emb, ok := repo.Store().(*cas.Embedded)
	if !ok {
		t.Fatalf("the repo's store is a %T, not the embedded store", repo.Store())
	}
	keys, err := emb.Blockstore().AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for c := range keys {
		b, err := emb.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		f(c, b)
	}
}

func TestPrivateMarkerNowhere(t *testing.T) {
	repo, w, srv, hs := servedRepo(t)
	ctx := context.Background()
	k := newKeyring(t)
	bodies, path, large := privateBodies(t, 1000)
	appendPrivate(t, w, k, repo.DefaultGroup(), bodies, path)
	res, err := srv.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var all []string
	storeBlocks(t, repo, func(c cid.Cid, b []byte) {
		noMarker(t, "block "+c.String()+" of the embedded store", b)
		all = append(all, c.String())
	})
	if len(all) < 10 {
		t.Fatalf("the embedded store holds %d blocks: the log is not in it", len(all))
	}
	// Every file of the repo, the local log (journal) included.
	filepath.WalkDir(repo.Dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			noMarker(t, "repo file "+p, b)
		}
		return nil
	})

	var car bytes.Buffer
	if _, err := remotelog.Backup(ctx, repo, w.Name(), &car, time.Now, nil); err != nil {
		t.Fatal(err)
	}
	noMarker(t, "the CAR backup", car.Bytes())

	get := func(path string) []byte {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
		}
		return b
	}
	for _, c := range all {
		noMarker(t, "rlog serve's /ipfs/"+c, get("/ipfs/"+c+"?format=raw"))
	}
	noMarker(t, "rlog serve's record", get("/ipns/"+w.Name().String()+"?format=ipns-record"))
	noMarker(t, "rlog serve's CAR of the head", get("/ipfs/"+res.Head.String()+"?format=car&dag-scope=all"))

	src, err := remotelog.OpenSource(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	checkPrivateRead(t, src, w, k, bodies, large)
	car2, err := os.CreateTemp(t.TempDir(), "backup-*.car")
	if err != nil {
		t.Fatal(err)
	}
	car2.Write(car.Bytes())
	car2.Close()
	cs, err := remotelog.OpenCARSource(ctx, car2.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	checkPrivateRead(t, cs, w, k, bodies, large)
}

// TestKuboPrivateMarkerNowhere: the same log published to a real Kubo
// daemon; 'ipfs block get' of every block of its DAG holds no marker.
func TestKuboPrivateMarkerNowhere(t *testing.T) {
	api := kuboEnv(t, "RLOG_KUBO_API")[0]
	kb := kuboBackend(t, api)
	w := kuboWriter(t, kb, small(t))
	k := newKeyring(t)
	bodies, path, large := privateBodies(t, 1000)
	appendPrivate(t, w, k, group, bodies, path)
	res, err := w.Publish(context.Background(), remotelog.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refs := strings.Fields(string(ipfs(t, api, nil, "refs", "-r", "--unique", res.Head.String())))
	refs = append(refs, res.Head.String())
	if len(refs) < 100 {
		t.Fatalf("ipfs refs -r: %d blocks", len(refs))
	}
	for _, c := range refs {
		noMarker(t, "ipfs block get "+c, ipfs(t, api, nil, "block", "get", c))
	}
	checkPrivateRead(t, kb, w, k, bodies, large)
}
