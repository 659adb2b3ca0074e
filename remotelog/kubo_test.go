package remotelog_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/cas"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

// The Kubo tests talk to real daemons: RLOG_KUBO_API names an offline one
// started by the test setup (.ci/run), RLOG_KUBO_IPFS the ipfs binary, and
// RLOG_KUBO_A_API / RLOG_KUBO_B_API two online nodes connected to each
// other. Without them the tests skip.
func kuboEnv(t testing.TB, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" && os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set in CI: .ci/run starts the daemons the Kubo tests need", n)
		}
		if v == "" {
			t.Skipf("%s is not set: no Kubo daemon to test against (see README, Kubo tests)", n)
		}
		out = append(out, v)
	}
	return out
}

func kuboBackend(t testing.TB, api string) *remotelog.KuboBackend {
	t.Helper()
	src, err := remotelog.OpenKubo(context.Background(), api)
	if err != nil {
		t.Fatal(err)
	}
	return src.(*remotelog.KuboBackend)
}

// ipfs runs the real ipfs command against a daemon.
func ipfs(t *testing.T, api string, stdin []byte, args ...string) []byte {
	t.Helper()
	bin := kuboEnv(t, "RLOG_KUBO_IPFS")[0]
	cmd := exec.Command(bin, append([]string{"--api", api}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ipfs %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// kuboWriter opens a writer with a fresh key publishing to k.
func kuboWriter(t testing.TB, k *remotelog.KuboBackend, pol pager.Policy) *remotelog.Writer {
	return kuboWriterOn(t, k.Kubo, k, pol)
}

// kuboWriterOn opens a writer with a fresh key putting blocks into st and
// records into k's daemon. Its local store, where large payloads wait for
// a publish, is its own, as a repo's is.
func kuboWriterOn(t testing.TB, st cas.Store, k *remotelog.KuboBackend, pol pager.Policy) *remotelog.Writer {
	t.Helper()
	_, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := crypto.UnmarshalEd25519PrivateKey(sk)
	w, err := remotelog.OpenWriter(remotelog.WriterConfig{
		Dir: t.TempDir(), Key: key, Store: st, Local: cas.NewMemory(), Publisher: k.Names, Resolver: k.Names,
		Policy: pol, Lifetime: remotelog.DefaultLifetime, TTL: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func readAll(t *testing.T, src remotelog.Source, name ipns.Name, cur remotelog.Cursor, opts remotelog.ReadOptions) ([]remotelog.Message, remotelog.Cursor, error) {
	t.Helper()
	var got []remotelog.Message
	cur, _, err := remotelog.CatchUp(context.Background(), src, name, cur, opts, func(m remotelog.Message) error {
		if m.IsLarge() { // the test's bodies are small enough to compare in memory
			b, err := os.ReadFile(m.BodyFile)
			if err != nil {
				return err
			}
			m.Body = b
		}
		got = append(got, m)
		return nil
	})
	return got, cur, err
}

// TestKuboInterop publishes a log through a real daemon and checks it with
// Kubo's own tools: dag get, cat, add, pin ls, name resolve, dag export.
func TestKuboInterop(t *testing.T) {
	api := kuboEnv(t, "RLOG_KUBO_API")[0]
	k := kuboBackend(t, api)
	pol := small(t)
	pol.InlineLimit, pol.HeadInlineLimit = 512, 512 // 1 KiB and 5 MiB payloads go by pointer
	w := kuboWriter(t, k, pol)
	ctx := context.Background()
	kib := bytes.Repeat([]byte("k"), 1024)
	mib5 := bytes.Repeat([]byte("0123456789abcdef"), 5<<16)
	var bodies [][]byte
	for i := range 40 {
		bodies = append(bodies, body(i))
	}
	bodies = append(bodies, kib, mib5)
	app, err := w.Append(ctx, group, bodies)
	if err != nil {
		t.Fatal(err)
	}
	res1, err := w.Publish(ctx, remotelog.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Readers get everything through the daemon, verified.
	got, _, err := readAll(t, k, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil || len(got) != 42 || !bytes.Equal(got[41].Body, mib5) {
		t.Fatalf("read through kubo: %d messages, %v", len(got), err)
	}

	// Kubo's gateway serves the same log to a trustless-gateway reader.
	gwURL := kuboEnv(t, "RLOG_KUBO_GW")[0]
	gw, err := remotelog.OpenSource(ctx, gwURL)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	got, _, err = readAll(t, gw, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil || len(got) != 42 || !bytes.Equal(got[41].Body, mib5) {
		t.Fatalf("read through kubo's gateway %s: %d messages, %v", gwURL, len(got), err)
	}

	// ipfs dag get shows the page fields.
	var head map[string]any
	if err := json.Unmarshal(ipfs(t, api, nil, "dag", "get", res1.Head.String()), &head); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"v", "p", "s", "e", "n"} {
		if _, ok := head[key]; !ok {
			t.Errorf("ipfs dag get: head has no %q: %v", key, head)
		}
	}
	if head["s"].(float64) < 1 || head["v"].(float64) != pager.V3 {
		t.Errorf("ipfs dag get: %v", head)
	}
	// and, through the head's link n, its window node's (an IPLD path).
	var node map[string]any
	if err := json.Unmarshal(ipfs(t, api, nil, "dag", "get", res1.Head.String()+"/n"), &node); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"v", "p", "w", "x"} {
		if _, ok := node[key]; !ok {
			t.Errorf("ipfs dag get HEAD/n: the window node has no %q: %v", key, node)
		}
	}
	// The record as Kubo gives it back (routing get, or its gateway's
	// ?format=ipns-record) is the signed record rlog made, hint and all.
	if rec, err := namesys.Resolve(ctx, k, w.Name(), time.Now()); err != nil || !rec.Hint.Node.Defined() {
		t.Errorf("the record through kubo: %v, without a hint: %+v", err, rec)
	} else if rec.Hint.Node.String() != fmt.Sprint(head["n"].(map[string]any)["/"]) {
		t.Errorf("the record through kubo hints %s, the head links %v", rec.Hint.Node, head["n"])
	}

	// ipfs cat H2 is the exact wire payload; ipfs add of it gives H2.
	for i, a := range app[40:] {
		wire := mvds.Message{GroupID: a.GroupID, Timestamp: a.Timestamp, Body: bodies[40+i]}.Marshal()
		h2, _, err := cas.PayloadBlocks(wire)
		if err != nil {
			t.Fatal(err)
		}
		if out := ipfs(t, api, nil, "cat", h2.String()); !bytes.Equal(out, wire) {
			t.Errorf("ipfs cat %s: %d bytes, want the %d-byte wire payload", h2, len(out), len(wire))
		}
		added := strings.TrimSpace(string(ipfs(t, api, wire, "add", "--cid-version=1", "--raw-leaves", "-Q", "--only-hash")))
		if added != h2.String() {
			t.Errorf("ipfs add of a %d-byte payload: %s, rlog H2 %s", len(wire), added, h2)
		}
	}

	// The head is pinned recursively; after the next publish, the new head
	// is and the old one no longer.
	pinned := func() string { return string(ipfs(t, api, nil, "pin", "ls", "--type=recursive", "-q")) }
	if !strings.Contains(pinned(), res1.Head.String()) {
		t.Fatalf("head %s not pinned: %s", res1.Head, pinned())
	}
	w.Append(ctx, group, [][]byte{[]byte("more")})
	res2, err := w.Publish(ctx, remotelog.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := pinned(); !strings.Contains(p, res2.Head.String()) || strings.Contains(p, res1.Head.String()) {
		t.Fatalf("after a publish, pins are %q; want %s and not %s", p, res2.Head, res1.Head)
	}

	// ipfs name resolve returns the head.
	if out := strings.TrimSpace(string(ipfs(t, api, nil, "name", "resolve", w.Name().String()))); out != "/ipfs/"+res2.Head.String() {
		t.Errorf("ipfs name resolve: %s, want /ipfs/%s", out, res2.Head)
	}

	// ipfs dag export is a CAR from which an empty embedded store reads
	// the whole log.
	car := ipfs(t, api, nil, "dag", "export", res2.Head.String())
	store, err := cas.OpenEmbedded(filepath.Join(t.TempDir(), "blocks"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	roots, n, err := cas.ImportCAR(ctx, store, bytes.NewReader(car))
	if err != nil || len(roots) != 1 || !roots[0].Equals(res2.Head) {
		t.Fatalf("import the exported CAR: roots %v, %d blocks, %v", roots, n, err)
	}
	got, _, err = readAll(t, storeSource{store}, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Head: roots[0]})
	if err != nil || len(got) != 43 || !bytes.Equal(got[41].Body, mib5) || string(got[42].Body) != "more" {
		t.Fatalf("read the exported CAR: %d messages, %v", len(got), err)
	}

	// An rlog backup is a CAR Kubo imports as it is.
	var backup bytes.Buffer
	if _, err := remotelog.Backup(ctx, k, w.Name(), &backup, time.Now, nil); err != nil {
		t.Fatal(err)
	}
	out := ipfs(t, api, backup.Bytes(), "dag", "import", "--pin-roots=false", "--stats")
	if !strings.Contains(string(out), "Imported") && !strings.Contains(string(out), "Block") {
		t.Fatalf("ipfs dag import of a backup: %s", out)
	}
}

// storeSource reads blocks from a store and has no records.
type storeSource struct{ cas.Getter }

func (storeSource) Resolve(context.Context, ipns.Name) ([]byte, error) {
	return nil, namesys.ErrNotFound
}

// daemon is a Kubo daemon a test starts itself, to kill it.
type daemon struct {
	t   *testing.T
	dir string
	api string
	cmd *exec.Cmd
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newDaemon(t *testing.T) *daemon {
	bin := kuboEnv(t, "RLOG_KUBO_IPFS")[0]
	d := &daemon{t: t, dir: t.TempDir()}
	run := func(args ...string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+d.dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ipfs %v: %v: %s", args, err, out)
		}
	}
	run("init", "--profile", "test")
	d.api = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
	run("config", "Addresses.API", d.api)
	run("config", "Addresses.Gateway", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t)))
	d.start()
	t.Cleanup(d.kill)
	return d
}

func (d *daemon) start() {
	bin := kuboEnv(d.t, "RLOG_KUBO_IPFS")[0]
	d.cmd = exec.Command(bin, "daemon", "--offline")
	d.cmd.Env = append(os.Environ(), "IPFS_PATH="+d.dir, "IPFS_TELEMETRY=off")
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	errLog, err := os.Create(filepath.Join(d.dir, "daemon.stderr"))
	if err != nil {
		d.t.Fatal(err)
	}
	defer errLog.Close()
	d.cmd.Stderr = errLog
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	// Kubo says when its API serves; a daemon that exits first closes out.
	var said strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Daemon is ready") {
			go io.Copy(io.Discard, out)
			return
		}
	}
	stderr, _ := os.ReadFile(errLog.Name())
	d.t.Fatalf("kubo exited before it was ready:\n%s%s", said.String(), stderr)
}

func (d *daemon) kill() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		d.cmd = nil
		os.Remove(filepath.Join(d.dir, "repo.lock"))
	}
}

// killing wraps a store and a name store so that the daemon is killed at a
// chosen step of a publish or a read.
type killing struct {
	cas.Store
	names interface {
		namesys.Publisher
		namesys.Resolver
	}
	d          *daemon
	beforePut  bool
	beforeName bool
	afterGets  int64
	gets       atomic.Int64
}

func (k *killing) Put(ctx context.Context, blks []blocks.Block) error {
	if k.beforePut {
		k.d.kill()
	}
	return k.Store.Put(ctx, blks)
}

func (k *killing) Publish(ctx context.Context, n ipns.Name, raw []byte) error {
	if k.beforeName {
		k.d.kill()
	}
	return k.names.Publish(ctx, n, raw)
}

func (k *killing) Resolve(ctx context.Context, n ipns.Name) ([]byte, error) {
	return k.names.Resolve(ctx, n)
}

func (k *killing) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if n := k.gets.Add(1); k.afterGets > 0 && n == k.afterGets {
		k.d.kill()
	}
	return k.Store.Get(ctx, c)
}

// TestKuboKilledMidPublish kills the daemon before the blocks of a publish
// reach it, and before its record does: each publish fails, loses nothing,
// and the next one after the daemon is back completes.
func TestKuboKilledMidPublish(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	k := kuboBackend(t, d.api)
	kw := &killing{Store: k.Kubo, names: k.Names, d: d}
	_, sk, _ := ed25519.GenerateKey(nil)
	key, _ := crypto.UnmarshalEd25519PrivateKey(sk)
	w, err := remotelog.OpenWriter(remotelog.WriterConfig{Dir: t.TempDir(), Key: key, Store: kw, Publisher: kw, Resolver: kw,
		Policy: small(t), Lifetime: remotelog.DefaultLifetime, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	total := 0
	for _, step := range []string{"blocks", "record"} {
		for i := range 25 {
			w.Append(ctx, group, [][]byte{body(total + i)})
		}
		total += 25
		kw.beforePut, kw.beforeName = step == "blocks", step == "record"
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); !errors.Is(err, cas.ErrUnreachable) && err == nil {
			t.Fatalf("%s: publish with the daemon killed succeeded", step)
		}
		kw.beforePut, kw.beforeName = false, false
		d.start()
		res, err := w.Publish(ctx, remotelog.PublishOptions{})
		if err != nil {
			t.Fatalf("%s: publish after the daemon is back: %v", step, err)
		}
		if res.Messages != uint64(total) {
			t.Fatalf("%s: published %d messages, want %d", step, res.Messages, total)
		}
		got, _, err := readAll(t, kuboBackend(t, d.api), w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
		if err != nil || len(got) != total {
			t.Fatalf("%s: read back %d of %d: %v", step, len(got), total, err)
		}
	}
}

// TestKuboReaderKeepsCursor kills the daemon in the middle of a catch-up:
// the reader reports the failure with the cursor of what it delivered, and
// resumes from it once the daemon is back, seeing every message once.
func TestKuboReaderKeepsCursor(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	pol := small(t)
	pol.InlineLimit, pol.HeadInlineLimit = -1, -1 // every message a block: many reads
	w := kuboWriter(t, kuboBackend(t, d.api), pol)
	var bodies [][]byte
	for i := range 200 {
		bodies = append(bodies, body(i))
	}
	w.Append(ctx, group, bodies)
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	k := kuboBackend(t, d.api)
	kr := &killing{Store: k.Kubo, names: k.Names, d: d, afterGets: 60}
	seen := map[mvds.MessageID]int{}
	got, cur, err := readAll(t, kr, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Concurrency: 4})
	if err == nil {
		t.Fatal("catch-up with the daemon killed succeeded")
	}
	if cur.Seq != uint64(len(got)) {
		t.Fatalf("cursor at %d after %d messages", cur.Seq, len(got))
	}
	for _, m := range got {
		seen[m.ID]++
	}
	d.start()
	rest, cur, err := readAll(t, kuboBackend(t, d.api), w.Name(), cur, remotelog.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rest {
		seen[m.ID]++
	}
	if len(seen) != 200 || cur.Seq != 200 {
		t.Fatalf("%d distinct messages, cursor %d", len(seen), cur.Seq)
	}
	for _, n := range seen {
		if n != 1 {
			t.Fatal("a message was delivered twice")
		}
	}
	t.Logf("first catch-up delivered %d before the kill, the second %d", len(got), len(rest))
}

// TestKuboTwoNodes: the writer publishes through node A, the reader reads
// through node B only; blocks travel by bitswap and the record by routing.
// B pins the log (as `rlog pin` does); with A stopped, B still serves it.
func TestKuboTwoNodes(t *testing.T) {
	env := kuboEnv(t, "RLOG_KUBO_A_API", "RLOG_KUBO_B_API")
	ctx := context.Background()
	a, b := kuboBackend(t, env[0]), kuboBackend(t, env[1])
	w := kuboWriter(t, a, small(t))
	var bodies [][]byte
	for i := range 120 {
		bodies = append(bodies, body(i))
	}
	w.Append(ctx, group, bodies)
	res, err := w.Publish(ctx, remotelog.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Has(ctx, res.Head); ok {
		t.Fatal("node B has the head before anyone asked it")
	}
	got, cur, err := readAll(t, b, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil || len(got) != 120 {
		t.Fatalf("read through B: %d messages, %v", len(got), err)
	}
	// B keeps the log: pin the head, store the record.
	raw, err := b.Resolve(ctx, w.Name())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Pin(ctx, cid.Undef, res.Head); err != nil {
		t.Fatal(err)
	}
	if err := b.Names.Publish(ctx, w.Name(), raw); err != nil {
		t.Fatal(err)
	}
	// Stop A. B alone serves the whole log to a new reader.
	ipfs(t, env[0], nil, "shutdown")
	got, _, err = readAll(t, b, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil || len(got) != 120 {
		t.Fatalf("read through B with A stopped: %d messages, %v", len(got), err)
	}
	if cur.Seq != 120 {
		t.Fatalf("cursor at %d after reading through B", cur.Seq)
	}
}
