package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"rlog/remotelog"
)

func newKeyring(t testing.TB) *remotelog.Keyring {
	t.Helper()
	k, err := remotelog.NewKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sealSizes are body sizes around the segment boundaries.
var sealSizes = []int{0, 1, 256, remotelog.SegmentSize - 1, remotelog.SegmentSize, remotelog.SegmentSize + 1, 3*remotelog.SegmentSize + 17}

func TestSealOpenRoundTrip(t *testing.T) {
	k := newKeyring(t)
	for _, n := range sealSizes {
		plain := bytes.Repeat([]byte("abcdefg"), n/7+1)[:n]
		sealed, err := k.Seal(group, plain)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(sealed)) != remotelog.SealedSize(0, uint64(n)) {
			t.Errorf("%d bytes: sealed %d, SealedSize says %d", n, len(sealed), remotelog.SealedSize(0, uint64(n)))
		}
		if n > 0 && bytes.Contains(sealed, plain[:min(n, 7)]) && n >= 7 {
			t.Errorf("%d bytes: the sealed body contains the plain text", n)
		}
		got, err := k.Open(group, sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: open: %d bytes, %v", n, len(got), err)
		}
		// The streaming forms agree with the whole-body ones.
		var sw bytes.Buffer
		if err := k.SealTo(&sw, group, bytes.NewReader(plain), uint64(n)); err != nil {
			t.Fatal(err)
		}
		if sw.Len() != len(sealed) {
			t.Errorf("%d bytes: SealTo wrote %d, Seal %d", n, sw.Len(), len(sealed))
		}
		for _, s := range [][]byte{sealed, sw.Bytes()} {
			var out bytes.Buffer
			if _, err := k.OpenTo(&out, group, bytes.NewReader(s)); err != nil || !bytes.Equal(out.Bytes(), plain) {
				t.Fatalf("%d bytes: OpenTo: %d bytes, %v", n, out.Len(), err)
			}
		}
	}
}

// TestSealedOverhead: a 256-byte body grows by 37 bytes (the target is at
// most 40), and by 38 from epoch 128 on.
func TestSealedOverhead(t *testing.T) {
	for _, c := range []struct{ epoch, want uint64 }{{0, 37}, {127, 37}, {128, 38}, {16383, 38}} {
		if got := remotelog.SealedSize(c.epoch, 256) - 256; got != c.want {
			t.Errorf("epoch %d: overhead %d, want %d", c.epoch, got, c.want)
		}
	}
}

// TestOpenRefusesDamage: every changed byte, every cut, another key and
// another group give an error and nothing of the body.
func TestOpenRefusesDamage(t *testing.T) {
	k := newKeyring(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, n := range []int{0, 256, 2*remotelog.SegmentSize + 5, 2 * remotelog.SegmentSize} {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(rng.Uint32())
		}
		sealed, _ := k.Seal(group, plain)
		check := func(what string, b []byte, g []byte, kr *remotelog.Keyring, want error) {
			t.Helper()
			got, err := kr.Open(g, b)
			if !errors.Is(err, want) || got != nil {
				t.Fatalf("%d bytes, %s: %d bytes, %v; want %v", n, what, len(got), err, want)
			}
			var out bytes.Buffer
			_, err = kr.OpenTo(&out, g, bytes.NewReader(b))
			if !errors.Is(err, want) {
				t.Fatalf("%d bytes, %s, streamed: %v; want %v", n, what, err, want)
			}
		}
		// Changed bytes: every header byte, then a sample of the rest.
		positions := []int{}
		for i := range min(len(sealed), 40) {
			positions = append(positions, i)
		}
		for range 50 {
			positions = append(positions, rng.IntN(len(sealed)))
		}
		for _, i := range positions {
			b := bytes.Clone(sealed)
			b[i] ^= 1 << rng.IntN(8)
			got, err := k.Open(group, b)
			if err == nil || got != nil {
				t.Fatalf("%d bytes: byte %d changed: opened", n, i)
			}
			if !errors.Is(err, remotelog.ErrDecrypt) && !errors.Is(err, remotelog.ErrPrivate) {
				t.Fatalf("%d bytes: byte %d changed: %v", n, i, err)
			}
		}
		// Cut short: at every segment boundary and a sample of other places.
		cuts := []int{0, 3, 20, len(sealed) - 1, len(sealed) - 16}
		for s := 1; s*(remotelog.SegmentSize+16) < len(sealed); s++ {
			cuts = append(cuts, 21+s*(remotelog.SegmentSize+16))
		}
		for range 20 {
			cuts = append(cuts, rng.IntN(len(sealed)))
		}
		for _, c := range cuts {
			if c < 0 || c >= len(sealed) {
				continue
			}
			check("cut at "+strconv.Itoa(c), sealed[:c], group, k, remotelog.ErrDecrypt)
		}
		// Two sealed bodies glued: the first's last segment is final.
		if n > 0 {
			check("extended", append(bytes.Clone(sealed), sealed[21:]...), group, k, remotelog.ErrDecrypt)
		}
		check("another group", sealed, []byte("another group"), k, remotelog.ErrDecrypt)
		check("another key", sealed, group, newKeyring(t), remotelog.ErrDecrypt)
		other := &remotelog.Keyring{}
		other.Rekey()
		other.Rekey() // holds epochs 0 and 1 of other keys
		check("another key, epoch 0", sealed, group, other, remotelog.ErrDecrypt)
		check("no key", sealed, group, &remotelog.Keyring{}, remotelog.ErrPrivate)
		check("not sealed", plain, group, k, remotelog.ErrDecrypt)
	}
}

// TestRekeyReadsAcross: after a rekey, a reader with every key reads both
// epochs; one with only the new key reads the new and is told which key
// it lacks for the old.
func TestRekeyReadsAcross(t *testing.T) {
	k := newKeyring(t)
	old, _ := k.Seal(group, []byte("before"))
	if _, err := k.Rekey(); err != nil {
		t.Fatal(err)
	}
	nw, _ := k.Seal(group, []byte("after"))
	if !remotelog.IsSealed(nw) || nw[4] != 1 {
		t.Fatalf("sealed after rekey: header % x, want epoch 1", nw[:5])
	}
	all := &remotelog.Keyring{}
	if err := all.Add(k.Keys()...); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{string(old), "before"}, {string(nw), "after"}} {
		if got, err := all.Open(group, []byte(c[0])); err != nil || string(got) != c[1] {
			t.Fatalf("open %q: %q, %v", c[1], got, err)
		}
	}
	cur, _ := k.Current()
	newOnly := &remotelog.Keyring{}
	newOnly.Add(cur)
	if got, err := newOnly.Open(group, nw); err != nil || string(got) != "after" {
		t.Fatalf("new key, new body: %q, %v", got, err)
	}
	if _, err := newOnly.Open(group, old); !errors.Is(err, remotelog.ErrPrivate) || !strings.Contains(err.Error(), "epoch 0") {
		t.Fatalf("new key, old body: %v", err)
	}
	// A link carries the keys; a damaged one is refused.
	name := newWorld(t, small(t)).w.Name()
	link := remotelog.ShareLink(name, k.Keys())
	gotName, keys, err := remotelog.ParseLink(link)
	if err != nil || gotName != name || len(keys) != 2 || keys[1] != cur {
		t.Fatalf("ParseLink(%s): %v %v %v", link, gotName, keys, err)
	}
	for _, bad := range []string{link[:len(link)-3], strings.Replace(link, "#keys=", "#", 1), "rlog://nope#keys=0.AAAA", strings.Replace(link, "rlog://", "http://", 1)} {
		if _, _, err := remotelog.ParseLink(bad); err == nil {
			t.Errorf("ParseLink(%s): no error", bad)
		}
	}
	// The repo keeps the keys, readable by its owner only.
	dir := t.TempDir()
	if err := remotelog.SaveKeyring(dir, name, all); err != nil {
		t.Fatal(err)
	}
	back, err := remotelog.LoadKeyring(dir, name)
	if err != nil || len(back.Keys()) != 2 || back.Keys()[1] != cur {
		t.Fatalf("LoadKeyring: %v, %v", back, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "keys", name.String()+".json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file: %v, %v", fi, err)
	}
	if k, err := remotelog.LoadKeyring(t.TempDir(), name); k != nil || err != nil {
		t.Fatalf("LoadKeyring of a repo without keys: %v, %v", k, err)
	}
}

// FuzzOpen: opening any bytes never panics, and whatever opens opens the
// same whole and streamed; a sealed body opens to what was sealed.
func FuzzOpen(f *testing.F) {
	k := &remotelog.Keyring{}
	k.Add(remotelog.ReadKey{Epoch: 0}, remotelog.ReadKey{Epoch: 1, Key: [32]byte{1}})
	for _, n := range []int{0, 5, 300} {
		s, _ := k.Seal(group, bytes.Repeat([]byte{'x'}, n))
		f.Add(s, false)
	}
	f.Add([]byte("\xf5rl\x01\x80\x80\x80"), false)
	f.Add([]byte("plain"), true)
	f.Fuzz(func(t *testing.T, b []byte, seal bool) {
		if seal {
			s, err := k.Seal(group, b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.Open(group, s)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("sealed %d bytes: %v", len(b), err)
			}
			b = s
		}
		got, err := k.Open(group, b)
		var out bytes.Buffer
		n, serr := k.OpenTo(&out, group, bytes.NewReader(b))
		if (err == nil) != (serr == nil) {
			t.Fatalf("whole: %v, streamed: %v", err, serr)
		}
		// As a reader opens a message's body (into a shared buffer).
		m := remotelog.Message{}
		m.GroupID, m.Body = group, b
		merr := k.OpenMessage(&m)
		if (err == nil) != (merr == nil) || (err == nil && !bytes.Equal(m.Body, got)) {
			t.Fatalf("whole: %v, as a message: %v", err, merr)
		}
		if err == nil && (!bytes.Equal(got, out.Bytes()) || n != uint64(len(got))) {
			t.Fatalf("whole %d bytes, streamed %d", len(got), out.Len())
		}
		if err != nil && got != nil {
			t.Fatal("an error with a body")
		}
	})
}

// FuzzParseLink: any text either is refused or gives a name and 32-byte
// keys that make the same link again.
func FuzzParseLink(f *testing.F) {
	f.Add("rlog://k51qzi5uqu5dj6rcffv2yq5f0yvcfx3620wghwkqje004yryjzyudrc5679dea#keys=0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,1.AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE")
	f.Add("rlog://x#keys=")
	f.Add("rlog://#")
	f.Fuzz(func(t *testing.T, s string) {
		name, keys, err := remotelog.ParseLink(s)
		if err != nil {
			return
		}
		again, keys2, err := remotelog.ParseLink(remotelog.ShareLink(name, keys))
		if err != nil || again != name || len(keys2) != len(keys) {
			t.Fatalf("%q: parsed, but its link does not parse back: %v", s, err)
		}
	})
}

// TestOpenedBodiesStand: bodies opened one after another (as a reader's
// workers do, several at once, into shared buffers), damaged ones among
// them, each keep what was sealed however long they are kept, and growing
// one changes no other.
func TestOpenedBodiesStand(t *testing.T) {
	k := newKeyring(t)
	const workers = 4
	var want, got [workers][][]byte
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			errs <- func() error {
				for i := range 1000 {
					plain := []byte(strings.Repeat(strconv.Itoa(w*1000+i), 1+i%700))
					sealed, err := k.Seal(group, plain)
					if err != nil {
						return err
					}
					m := remotelog.Message{}
					m.GroupID, m.Body = group, sealed
					if i%10 == 3 { // a changed body opens nothing, and spoils no other
						sealed[len(sealed)-1] ^= 1
						if err := k.OpenMessage(&m); !errors.Is(err, remotelog.ErrDecrypt) {
							return fmt.Errorf("body %d changed: %v", i, err)
						}
						continue
					}
					if err := k.OpenMessage(&m); err != nil {
						return fmt.Errorf("body %d: %v", i, err)
					}
					if cap(m.Body) != len(m.Body) {
						return fmt.Errorf("body %d: %d bytes with room for %d: growing it would write over the next", i, len(m.Body), cap(m.Body))
					}
					want[w], got[w] = append(want[w], plain), append(got[w], m.Body)
				}
				return nil
			}()
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for w := range workers {
		for i := range got[w] {
			got[w][i] = append(got[w][i], "grown"...)
		}
	}
	for w := range workers {
		for i := range got[w] {
			if !bytes.Equal(got[w][i], append(want[w][i], "grown"...)) {
				t.Fatalf("opened body %d of worker %d changed since: %q", i, w, got[w][i])
			}
		}
	}
}

// TestOpeningStopsAtDamage: a log whose writer published a changed, a cut
// and a foreign sealed body (its ids hash what was published, so the log
// verifies) is read up to the damaged body, which stops the read with
// ErrDecrypt; nothing of it or after it is delivered: opened on delivery
// and opened ahead (OpenBodies).
func TestOpeningStopsAtDamage(t *testing.T) {
	for _, ahead := range []bool{false, true} {
		t.Run(map[bool]string{false: "on delivery", true: "ahead"}[ahead], func(t *testing.T) { testOpeningStopsAtDamage(t, ahead) })
	}
}

func testOpeningStopsAtDamage(t *testing.T, ahead bool) {
	k := newKeyring(t)
	good, _ := k.Seal(group, []byte("good"))
	changed, _ := k.Seal(group, []byte("changed"))
	changed[len(changed)-20] ^= 1
	cut, _ := k.Seal(group, bytes.Repeat([]byte("c"), remotelog.SegmentSize+10))
	cut = cut[:21+remotelog.SegmentSize+16] // the last segment dropped
	foreign, _ := newKeyring(t).Seal(group, []byte("foreign"))
	for _, c := range []struct {
		name string
		bad  []byte
	}{{"changed", changed}, {"cut", cut}, {"another key", foreign}} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, small(t))
			if _, err := w.w.Append(context.Background(), group, [][]byte{good, good, c.bad, good}); err != nil {
				t.Fatal(err)
			}
			w.publish(t)
			var got []string
			opts := remotelog.ReadOptions{Now: w.clock.Now}
			if ahead {
				opts.Prepare = remotelog.OpenBodies(k)
			}
			cur, _, err := remotelog.CatchUp(context.Background(), w, w.w.Name(), remotelog.Cursor{}, opts,
				remotelog.Opening(k, func(m remotelog.Message) error {
					got = append(got, string(m.Body))
					return nil
				}))
			if !errors.Is(err, remotelog.ErrDecrypt) || len(got) != 2 || got[1] != "good" || cur.Seq != 2 {
				t.Fatalf("delivered %q, cursor %d, %v; want the two before, ErrDecrypt", got, cur.Seq, err)
			}
			if !strings.Contains(err.Error(), "message 3") {
				t.Errorf("the error does not name the message: %v", err)
			}
		})
	}
}

// TestOpenBodiesAhead: bodies opened on the reader's workers ahead of
// delivery (inline bodies over many pages, pointer payloads among them)
// are delivered in order, each once, also from a cursor; without a key
// nothing of the log is delivered.
func TestOpenBodiesAhead(t *testing.T) {
	ctx := context.Background()
	k := newKeyring(t)
	w := newWorld(t, small(t))
	var want []string
	var sealed [][]byte
	for i := range 300 {
		b := fmt.Sprintf("message %d", i)
		if i%37 == 0 {
			b += strings.Repeat(".", 5000) // over the inline limit: a pointer
		}
		want = append(want, b)
		sb, err := k.Seal(group, []byte(b))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, sb)
	}
	if _, err := w.w.Append(ctx, group, sealed); err != nil {
		t.Fatal(err)
	}
	w.publish(t)
	readFrom := func(kr *remotelog.Keyring, cur remotelog.Cursor) ([]string, error) {
		var got []string
		_, _, err := remotelog.CatchUp(ctx, w, w.w.Name(), cur, remotelog.ReadOptions{Now: w.clock.Now, Prepare: remotelog.OpenBodies(kr)},
			remotelog.Opening(kr, func(m remotelog.Message) error {
				got = append(got, string(m.Body))
				return nil
			}))
		return got, err
	}
	got, err := readFrom(k, remotelog.Cursor{})
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("delivered %d messages (%v), want %d in order", len(got), err, len(want))
	}
	var mid []remotelog.Message
	remotelog.CatchUp(ctx, w, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now}, func(m remotelog.Message) error {
		if m.Seq == 150 {
			mid = append(mid, m)
		}
		return nil
	})
	got, err = readFrom(k, remotelog.Cursor{Seq: 150, ID: mid[0].ID})
	if err != nil || !slices.Equal(got, want[150:]) {
		t.Fatalf("from 150: delivered %d messages (%v), want %d in order", len(got), err, len(want)-150)
	}
	got, err = readFrom(nil, remotelog.Cursor{})
	if !errors.Is(err, remotelog.ErrPrivate) || len(got) != 0 {
		t.Fatalf("without a key: delivered %d, %v; want nothing, ErrPrivate", len(got), err)
	}
}

// TestHeldKeys: a body that names no log opens with whichever keyring the
// repo holds opens it; keys saved since are read when none does; a body no
// held key opens (another log's, or changed) is ErrPrivate.
func TestHeldKeys(t *testing.T) {
	dir := t.TempDir()
	names := []string{"k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8", "k51qzi5uqu5dhmb8wwhlowl8ucgazbn04rkp0s9e4nqcox64myye4g6frfcez4"}
	k0, k1 := newKeyring(t), newKeyring(t)
	n0, err := remotelog.ParseName(names[0])
	if err != nil {
		t.Fatal(err)
	}
	n1, err := remotelog.ParseName(names[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := remotelog.SaveKeyring(dir, n0, k0); err != nil {
		t.Fatal(err)
	}
	h, err := remotelog.NewHeldKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := k0.Seal(group, []byte("zero"))
	s1, _ := k1.Seal(group, []byte("one"))
	if b, err := h.Open(group, s0); err != nil || string(b) != "zero" {
		t.Fatalf("opened %q, %v", b, err)
	}
	if _, err := h.Open(group, s1); !errors.Is(err, remotelog.ErrPrivate) {
		t.Fatalf("a body of a log whose keys are not held: %v, want ErrPrivate", err)
	}
	if err := remotelog.SaveKeyring(dir, n1, k1); err != nil {
		t.Fatal(err)
	}
	if b, err := h.Open(group, s1); err != nil || string(b) != "one" {
		t.Fatalf("after its keys were saved: opened %q, %v", b, err)
	}
	s1[len(s1)-1] ^= 1
	if _, err := h.Open(group, s1); !errors.Is(err, remotelog.ErrPrivate) {
		t.Fatalf("a changed body: %v, want ErrPrivate (no key opens it)", err)
	}
	if _, err := h.Open(group, []byte("plain")); !errors.Is(err, remotelog.ErrDecrypt) {
		t.Fatalf("a body not sealed: %v, want ErrDecrypt", err)
	}
}
