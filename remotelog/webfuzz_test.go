package remotelog_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"rlog/mvds"
	"rlog/pager"
)

// webDecodeScript answers, line by line, "KIND HEX" with what the page's
// decoder of that kind makes of the bytes: "ok ..." (a summary to compare
// with Go's decoders), "refused ..." (a Refused error), or "THREW ..."
// (anything else: a bug).
const webDecodeScript = `
import { CID, decodeCBOR, decodeIndex, decodePage, decodePayload, decodeWindowNode, verifyRecord, Refused, hex } from './verify.js'
import { createInterface } from 'node:readline'
const fromHex = (s) => Uint8Array.from(s.match(/../g) || [], (x) => parseInt(x, 16))
const pageCid = CID.parse(process.env.PAGE_CID)
const run = {
  page: (b) => { const p = decodePage(pageCid, b); return [p.v, p.p, p.s, p.entries.length, p.head, p.tail.map((l) => l.s).join(',')].join(' ') },
  index: (b) => { const x = decodeIndex(pageCid, b); return [x.first, x.pages.length].join(' ') },
  payload: (b) => { const m = decodePayload(b); return [hex(m.group), m.timestamp, hex(m.body)].join(' ') },
  cbor: (b) => { decodeCBOR(b); return '' },
  window: (b) => { const n = decodeWindowNode(pageCid, b); return [n.p, n.window.length, n.index.length].join(' ') },
  record: async (b) => { const r = await verifyRecord(process.env.NAME, b, Date.parse('2026-01-01T00:00:00Z')); return r.sequence },
}
for await (const line of createInterface({ input: process.stdin })) {
  const [kind, h] = line.split(' ')
  let out
  try {
    out = 'ok ' + (await run[kind](fromHex(h || '')))
  } catch (e) {
    out = (e instanceof Refused ? 'refused ' : 'THREW ') + String(e?.stack || e).replaceAll('\n', ' | ')
  }
  process.stdout.write(out + '\n')
}
`

// webDecoders is the page's decoders running in one Node process.
type webDecoders struct {
	in  io.WriteCloser
	out *bufio.Reader
}

func startWebDecoders(t testing.TB) *webDecoders {
	t.Helper()
	bin := os.Getenv("RLOG_NODE")
	if bin == "" {
		missing(t, "RLOG_NODE is not set: run .ci/web.sh for Node 22")
	}
	name, _ := golden(t, "../testdata/ipns/record.txt")
	pageCID, _ := golden(t, "../testdata/pages/example.txt")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--input-type=module", "--eval", webDecodeScript)
	cmd.Dir, _ = filepath.Abs("web")
	cmd.Env = append(os.Environ(), "NAME="+name, "PAGE_CID="+pageCID)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
		cancel()
	})
	return &webDecoders{in: in, out: bufio.NewReaderSize(out, 1<<20)}
}

// decode asks the page's decoder of kind about b. A decoder that takes
// more than 30 s (it hangs) fails the test.
func (d *webDecoders) decode(t testing.TB, kind string, b []byte) string {
	t.Helper()
	if _, err := fmt.Fprintf(d.in, "%s %x\n", kind, b); err != nil {
		t.Fatalf("%s %x: %v", kind, b, err)
	}
	done := make(chan string, 1)
	go func() {
		line, _ := d.out.ReadString('\n')
		done <- strings.TrimSuffix(line, "\n")
	}()
	select {
	case line := <-done:
		return line
	case <-time.After(30 * time.Second):
		t.Fatalf("the page's %s decoder ran for 30 s on %x", kind, b)
		return ""
	}
}

// webKinds are the decoders, in the order a fuzz input's first byte picks.
var webKinds = []string{"page", "index", "payload", "cbor", "record", "window"}

// checkWebDecode runs the page's decoder of kind on b: it must answer
// without throwing anything but Refused, and for pages, index nodes and
// payloads accept exactly what rlog's Go decoders accept, decoding to the
// same values.
func checkWebDecode(t testing.TB, d *webDecoders, kind string, b []byte) {
	t.Helper()
	got := d.decode(t, kind, b)
	if got == "" || strings.HasPrefix(got, "THREW") {
		t.Fatalf("the page's %s decoder on %x: %s", kind, b, got)
	}
	var want string
	var err error
	switch kind {
	case "page":
		var pg *pager.Page
		if pg, err = pager.Decode(b); err == nil {
			tail := make([]string, len(pg.Tail))
			for i, l := range pg.Tail {
				tail[i] = strconv.FormatUint(l.Start, 10)
			}
			want = fmt.Sprintf("ok %d %d %d %d %t %s", pg.V(), pg.Number, pg.Start, len(pg.Entries), pg.Head, strings.Join(tail, ","))
		}
	case "index":
		var ix *pager.Index
		if ix, err = pager.DecodeIndex(b); err == nil {
			want = fmt.Sprintf("ok %d %d", ix.First, len(ix.Pages))
		}
	case "window":
		var wn *pager.WindowNode
		if wn, err = pager.DecodeWindowNode(b); err == nil {
			want = fmt.Sprintf("ok %d %d %d", wn.Number, len(wn.Window), len(wn.Index))
		}
	case "payload":
		var m mvds.Message
		if m, _, err = mvds.UnmarshalMessage(b); err == nil {
			want = fmt.Sprintf("ok %x %d %x", m.GroupID, m.Timestamp, m.Body)
		}
	default:
		return
	}
	switch {
	case err != nil && strings.HasPrefix(got, "ok"):
		t.Fatalf("the page's %s decoder accepts %x (%s), which Go refuses: %v", kind, b, got, err)
	case err == nil && strings.Contains(got, "over 2^53"):
		// Numbers past 2^53 (2^62 is the format's limit for sequences)
		// are beyond JavaScript's exact integers: refused, knowingly.
	case err == nil && got != want:
		t.Fatalf("the page's %s decoder on %x: %s, Go: %s", kind, b, got, want)
	}
}

// webSeeds are golden blocks of each kind: the v1 example page, the v2
// heads (without and with tail pieces), sealed page and index node, MVDS
// wire payloads, and the record.
func webSeeds(t testing.TB) map[string][][]byte {
	t.Helper()
	dec := func(h string) []byte {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	_, v1 := golden(t, "../testdata/pages/example.txt")
	_, rec := golden(t, "../testdata/ipns/record.txt")
	_, hinted := golden(t, "../testdata/ipns/record-hint.txt")
	v2, v3 := goldenV2(t), goldenPages(t, "v3.txt")
	seeds := map[string][][]byte{
		"page":   {dec(v1), dec(v2["page 5 head=true"][1]), dec(v2["page 4 head=false"][1]), dec(v2["page 5 head=true tail=2"][1]), dec(v3["head 5 v3 tail=2"][1]), dec(v3["head 0 v3"][1])},
		"index":  {dec(v2["index 3-4"][1])},
		"window": {dec(v3["window 5"][1])},
		"record": {dec(rec), dec(hinted)},
	}
	for _, m := range []mvds.Message{{GroupID: group, Timestamp: 1795430446, Body: []byte("three")}, {Body: []byte("x")}, {GroupID: group}} {
		seeds["payload"] = append(seeds["payload"], m.Marshal())
	}
	seeds["cbor"] = slices.Concat(seeds["page"], seeds["index"], seeds["window"])
	return seeds
}

// FuzzWebDecoders feeds any bytes to the page's JavaScript decoders (in
// Node): they decode or refuse with Refused, never throw anything else or
// hang, and accept exactly what pager and mvds accept. The first byte
// picks the decoder.
func FuzzWebDecoders(f *testing.F) {
	for i, kind := range webKinds {
		for _, b := range webSeeds(f)[kind] {
			f.Add(append([]byte{byte(i)}, b...))
		}
	}
	d := startWebDecoders(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		checkWebDecode(t, d, webKinds[int(in[0])%len(webKinds)], in[1:])
	})
}

// TestWebDecodersMutated: the page's decoders on 3,000 random mutations of
// the golden blocks (byte flips and sets, CBOR heads and lengths written
// in, cuts, insertions, duplications): each decodes or is refused with
// Refused, as Go decides. The seed is logged; RLOG_WEB_SEED replays one.
func TestWebDecodersMutated(t *testing.T) {
	d := startWebDecoders(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RLOG_WEB_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (RLOG_WEB_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	seeds := webSeeds(t)
	heads := []byte{0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x40, 0x58, 0x5f, 0x60, 0x78, 0x80, 0x98, 0x9f, 0xa0, 0xb8, 0xbf, 0xc0, 0xd8, 0x2a, 0xf4, 0xf6, 0xff}
	accepted := map[string]int{}
	for i := range 3000 {
		kind := webKinds[i%len(webKinds)]
		b := append([]byte{}, seeds[kind][rng.IntN(len(seeds[kind]))]...)
		for range 1 + rng.IntN(4) {
			if len(b) == 0 {
				break
			}
			at := rng.IntN(len(b))
			switch rng.IntN(7) {
			case 0:
				b[at] ^= 1 << rng.IntN(8)
			case 1:
				b[at] = byte(rng.IntN(256))
			case 2:
				b[at] = heads[rng.IntN(len(heads))]
			case 3:
				b = b[:at]
			case 4:
				b = append(b[:at], append([]byte{heads[rng.IntN(len(heads))]}, b[at:]...)...)
			case 5:
				b = append(b[:at], b[min(len(b), at+1+rng.IntN(8)):]...)
			case 6:
				end := min(len(b), at+1+rng.IntN(40))
				b = append(b[:end], append(append([]byte{}, b[at:end]...), b[end:]...)...)
			}
		}
		checkWebDecode(t, d, kind, b)
		if strings.HasPrefix(d.decode(t, kind, b), "ok") {
			accepted[kind]++
		}
	}
	t.Logf("accepted after mutation (the rest refused): %v", accepted)
}
