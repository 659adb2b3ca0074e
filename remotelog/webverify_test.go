package remotelog_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"rlog/mvds"
	"rlog/pager"
	"rlog/remotelog"
)

// golden reads a "name-or-cid | hex" vector file of testdata.
func golden(t testing.TB, path string) (key, hexBytes string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		if k, h, ok := strings.Cut(sc.Text(), " | "); ok && !strings.HasPrefix(k, "#") {
			return k, h
		}
	}
	t.Fatalf("%s: no vector", path)
	return "", ""
}

// webVerifierScript checks the page's verifier (web/verify.js) on the
// project's golden vectors: the example page decodes to what pager says,
// its bytes hash to its CID and a changed byte does not, the V2 record
// verifies for its name, and a changed record or another name does not.
const webVerifierScript = `
import { CID, checkBlock, decodePage, verifyRecord, Refused } from './verify.js'
const hex = (s) => Uint8Array.from(s.match(/../g), (x) => parseInt(x, 16))
const fail = (m) => { console.error(m); process.exit(1) }
const refuses = async (what, f) => {
  try { await f() } catch (e) { if (e instanceof Refused) return; fail(what + ': ' + e) }
  fail(what + ': accepted')
}
const pageCid = CID.parse(process.env.PAGE_CID), page = hex(process.env.PAGE_HEX)
await checkBlock(pageCid, page)
const pg = decodePage(pageCid, page)
if (pg.p !== 5 || pg.s !== 11 || pg.entries.length !== 2 || !pg.head || pg.links.length !== 3 || pg.window.length !== 3) fail('page: ' + JSON.stringify([pg.p, pg.s, pg.entries.length, pg.head, pg.links.length]))
if (pg.entries[1].ref?.toString() !== 'bafkreign2hg327mdllwvfkpt3zmtiroi5bdevnltxsgg3hriejjemzba5i') fail('entry 2 ref ' + pg.entries[1].ref)
const bad = page.slice(); bad[40] ^= 1
await refuses('a changed page byte', () => checkBlock(pageCid, bad))
const rec = hex(process.env.RECORD_HEX)
const r = await verifyRecord(process.env.NAME, rec, Date.parse('2026-01-01T00:00:00Z'))
if (r.sequence !== 7 || r.value !== '/ipfs/bafyreie7fzwthi3rp3ucmnj2ibf2iymndlxlnb4226jwxtuo2x2gqfesju' || r.ttlSeconds !== 60) fail('record: ' + JSON.stringify(r))
const badRec = rec.slice(); badRec[badRec.length - 10] ^= 1
await refuses('a changed record', () => verifyRecord(process.env.NAME, badRec, Date.parse('2026-01-01T00:00:00Z')))
await refuses('an expired record', () => verifyRecord(process.env.NAME, rec, Date.parse('2100-01-02T00:00:00Z')))
await refuses('another name', () => verifyRecord('k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8', rec, Date.parse('2026-01-01T00:00:00Z')))
console.log('ok')
`

// TestWebVerifier runs the page's verifier on the golden vectors in Node
// (22 from .ci/web.sh, whose WebCrypto has SHA-256 and Ed25519 as
// browsers do).
func TestWebVerifier(t *testing.T) {
	node := os.Getenv("RLOG_NODE")
	if node == "" {
		missing(t, "RLOG_NODE is not set: run .ci/web.sh for Node 22")
	}
	pageCID, pageHex := golden(t, "../testdata/pages/example.txt")
	name, recHex := golden(t, "../testdata/ipns/record.txt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--input-type=module", "--eval", webVerifierScript)
	cmd.Dir, _ = filepath.Abs("web")
	cmd.Env = append(os.Environ(), "PAGE_CID="+pageCID, "PAGE_HEX="+pageHex, "NAME="+name, "RECORD_HEX="+recHex)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("verify.js: %v\n%s", err, out)
	}
}

// node runs script (an ES module) in Node from web/, with stdin and env,
// and returns its output; the test skips without Node (fails under CI).
func node(t *testing.T, script string, stdin []byte, env ...string) string {
	t.Helper()
	bin := os.Getenv("RLOG_NODE")
	if bin == "" {
		missing(t, "RLOG_NODE is not set: run .ci/web.sh for Node 22")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--input-type=module", "--eval", script)
	cmd.Dir, _ = filepath.Abs("web")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	return string(out)
}

// goldenV2 reads testdata/pages/v2.txt: what -> (cid, hex).
func goldenV2(t testing.TB) map[string][2]string {
	t.Helper()
	return goldenPages(t, "v2.txt")
}

// goldenPages reads a file of testdata/pages of rows what | cid | hex:
// what -> (cid, hex).
func goldenPages(t testing.TB, file string) map[string][2]string {
	t.Helper()
	b, err := os.ReadFile("../testdata/pages/" + file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, " | "); len(f) == 3 && !strings.HasPrefix(line, "#") {
			out[f[0]] = [2]string{f[1], f[2]}
		}
	}
	return out
}

// webV2Script checks the verifier on the v2 golden vectors: a head with
// bare inline entries, a pointer, a window and index links; a sealed page;
// an index node; and that what pager refuses it refuses too.
const webV2Script = `
import { CID, checkBlock, decodePage, decodeIndex, Refused } from './verify.js'
` + webVectorHelpers + `const [hc, hb] = get('page 5 head=true'), [sc, sb] = get('page 4 head=false'), [ic, ib] = get('index 3-4')
for (const [c, b] of [[hc, hb], [sc, sb], [ic, ib]]) await checkBlock(c, b)
const h = decodePage(hc, hb)
const td = new TextDecoder()
if (h.v !== 2 || h.p !== 5 || h.s !== 11 || !h.head || h.last !== 12 || h.links.length !== 0) fail('head: ' + JSON.stringify([h.v, h.p, h.s, h.head, h.last]))
if (td.decode(h.entries[0].payload) !== 'hello' || h.entries[0].id || !h.entries[1].ref || h.entries[1].id.length !== 32) fail('head entries')
if (h.window.length !== 2 || h.window[0].s !== 9 || h.window[1].s !== 7) fail('head window')
if (h.index.length !== 2 || h.index[0].n !== 0 || h.index[0].s !== 1 || h.index[1].n !== 3 || h.index[1].s !== 7) fail('head index')
if (h.addrs[0] !== '/ip4/127.0.0.1/tcp/4001') fail('head addrs')
const s = decodePage(sc, sb)
if (s.v !== 2 || s.p !== 4 || s.s !== 9 || s.head || s.entries.length !== 2 || td.decode(s.entries[0].payload) !== 'nine' || s.entries[1].payload.length !== 0) fail('sealed')
const ix = decodeIndex(ic, ib)
if (ix.first !== 3 || ix.last !== 4 || ix.pages[0].s !== 7 || ix.pages[1].s !== 9 || !ix.pages[1].cid.equals(h.window[0].cid)) fail('index')
refuses('an index node as a page', () => decodePage(ic, ib))
refuses('a page as an index node', () => decodeIndex(sc, sb))
// Each a byte change of a golden block that pager.Decode refuses.
const swap = (b, from, to) => { const i = b.findIndex((x, k) => b.subarray(k, k + from.length).every((y, j) => y === from[j])); if (i < 0) fail('no ' + from); const c = b.slice(); c.set(to, i); return c }
const te = new TextEncoder()
refuses('a v1 version on a v2 sealed page', () => decodePage(sc, swap(sb, [0x61, 0x76, 0x02], [0x61, 0x76, 0x01])))
refuses('version 3', () => decodePage(sc, swap(sb, [0x61, 0x76, 0x02], [0x61, 0x76, 0x03])))
refuses('a non-shortest integer', () => decodePage(sc, swap(sb, [0x61, 0x76, 0x02], [0x61, 0x76, 0x18])))
refuses('keys out of order', () => decodePage(sc, swap(sb, te.encode('ap'), te.encode('aa'))))
refuses('a head without x', () => decodePage(hc, swap(hb, te.encode('ax'), te.encode('az'))))
refuses('page 4 claiming to start at 4', () => decodePage(sc, swap(sb, [0x61, 0x73, 0x09], [0x61, 0x73, 0x04])))
refuses('an index of version 1', () => decodeIndex(ic, swap(ib, [0x61, 0x76, 0x02], [0x61, 0x76, 0x01])))
refuses('trailing bytes', () => decodePage(sc, new Uint8Array([...sb, 0])))
// The head with two tail pieces: entries 11-12 and 13-14 in pieces, 15-16
// in the head, which begins its page at 11.
const [tc, tb] = get('page 5 head=true tail=2')
await checkBlock(tc, tb)
const t = decodePage(tc, tb)
if (t.p !== 5 || t.s !== 15 || t.pageStart !== 11 || t.last !== 16 || t.tail.length !== 2 || t.tail[0].s !== 11 || t.tail[1].s !== 13) fail('tail head: ' + JSON.stringify([t.p, t.s, t.pageStart, t.last, t.tail.length]))
if (h.tail.length !== 0 || h.pageStart !== 11 || s.tail.length !== 0) fail('pages without t')
if (t.window[0].s !== 9 || t.index.length !== 2 || td.decode(t.entries[0].payload) !== 'hello') fail('tail head window, index or entries')
// t[1] at 13 made 11 (not increasing), 15 (not before the head's 15), 5
// (impossible for page 5); t[0] at 11 made 9 (not after w[0] at 9).
refuses('tail starts that do not increase', () => decodePage(tc, swap(tb, [0x0d, 0x61, 0x76], [0x0b, 0x61, 0x76])))
refuses('a tail piece not before the head', () => decodePage(tc, swap(tb, [0x0d, 0x61, 0x76], [0x0f, 0x61, 0x76])))
refuses('a tail piece impossible for page 5', () => decodePage(tc, swap(tb, [0x0d, 0x61, 0x76], [0x05, 0x61, 0x76])))
refuses('a window page not before the first piece', () => decodePage(tc, swap(tb, [0x0b, 0x82, 0xd8], [0x09, 0x82, 0xd8])))
refuses('an empty t', () => decodePage(tc, swap(tb, te.encode('at'), [0x61, 0x74, 0x80])))
refuses('a tail piece link that is not a page', () => decodePage(tc, swap(tb, [0x74, 0x82, 0x82, 0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71], [0x74, 0x82, 0x82, 0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x55])))
console.log('ok')
`

// TestWebVerifierV2: the verifier on the v2 golden vectors
// (testdata/pages/v2.txt), a head with tail pieces among them, and on
// mutations of them that pager refuses (each checked to be refused by
// pager.Decode too).
func TestWebVerifierV2(t *testing.T) {
	vectors := goldenV2(t)
	tb, err := hex.DecodeString(vectors["page 5 head=true tail=2"][1])
	if err != nil || len(tb) == 0 {
		t.Fatalf("no v2 vector with tail pieces: %v", err)
	}
	swap := func(from, to []byte) []byte {
		i := bytes.Index(tb, from)
		if i < 0 {
			t.Fatalf("no %x in the vector", from)
		}
		return append(append(append([]byte{}, tb[:i]...), to...), tb[i+len(to):]...)
	}
	for _, m := range [][2][]byte{
		{{0x0d, 0x61, 0x76}, {0x0b, 0x61, 0x76}},
		{{0x0d, 0x61, 0x76}, {0x0f, 0x61, 0x76}},
		{{0x0d, 0x61, 0x76}, {0x05, 0x61, 0x76}},
		{{0x0b, 0x82, 0xd8}, {0x09, 0x82, 0xd8}},
		{[]byte("at"), {0x61, 0x74, 0x80}},
		{{0x74, 0x82, 0x82, 0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71}, {0x74, 0x82, 0x82, 0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x55}},
	} {
		if _, err := pager.Decode(swap(m[0], m[1])); err == nil {
			t.Fatalf("pager.Decode accepts the vector with %x made %x", m[0], m[1])
		}
	}
	v, _ := json.Marshal(vectors)
	if out := node(t, webV2Script, nil, "VECTORS="+string(v)); strings.TrimSpace(out) != "ok" {
		t.Fatalf("verify.js: %s", out)
	}
}

// webLogScript reads a whole log, given as its head and blocks on stdin,
// with the page's Log and Gateway (every block hash-checked), and prints
// each message: seq, id and body in hex.
const webLogScript = `
import { CID, Gateway, Log, checkBlock, hex, Refused } from './verify.js'
const fromHex = (s) => Uint8Array.from(s.match(/../g) || [], (x) => parseInt(x, 16))
let input = ''
for await (const chunk of process.stdin) input += chunk
const { head, blocks } = JSON.parse(input)
class Store extends Gateway {
  async block(cid) {
    const b = blocks[cid.toString()]
    if (!b) throw new Error('no block ' + cid)
    const bytes = fromHex(b)
    await checkBlock(cid, bytes)
    this.blocks++
    return bytes
  }
}
try {
  const gw = new Store('http://unused')
  const log = new Log(gw, await gw.head(CID.parse(head)))
  const pages = await log.pagesFrom(Number(process.env.FROM))
  const out = []
  for (const pg of pages) for (const [k, e] of pg.entries.entries()) {
    const m = await gw.message(pg.s + k, e)
    out.push(m.seq + ' ' + hex(m.id) + ' ' + hex(m.body))
  }
  console.log(out.join('\n'))
  console.log('blocks ' + gw.blocks)
  console.log('versions ' + [...new Set(pages.map((p) => p.v))].join(','))
} catch (e) {
  console.log((e instanceof Refused ? 'refused ' : 'THREW ') + e.message)
}
`

// logBlocks is every block reachable from head in w's store, CID -> hex.
func logBlocks(t *testing.T, w *world, head cid.Cid) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		if _, ok := out[c.String()]; ok {
			return
		}
		b, err := w.store.Get(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		out[c.String()] = hex.EncodeToString(b)
		if c.Prefix().Codec != cid.DagCBOR {
			return
		}
		kids, err := pager.Children(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			walk(k)
		}
	}
	walk(head)
	return out
}

// TestWebVerifierReadsLogs: the page's verifier reads a v1 log, a v2 log
// and a log that changed from v1 to v2 (old pages v1, index nodes listing
// them under a v2 head) to the very messages remotelog's reader reads,
// from the first message and from inside each part; entries of 300 bytes
// and more are pointers here, fetched and checked against their ids. Logs
// of the default preset, whose heads have tail pieces (20 and 40 messages:
// pieces of page 0; 700 and 1000: of page 2 and 3), are read from around
// every piece, fetching the head and only the pieces from the one holding
// the first message asked for.
func TestWebVerifierReadsLogs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		v1, v2   int    // messages written in v1, then in format
		format   uint64 // 0: the default, v3
		versions string
		paged    bool // the default preset, unchanged: its tail pieces
	}{
		{"v1", 95, 0, 0, "1", false},
		{"v2", 0, 195, pager.Version, "2", false},
		{"v3", 0, 195, 0, "2,3", false},
		{"v1 then v2", 95, 100, pager.Version, "1,2", false},
		{"v1 then v3", 95, 100, 0, "1,2,3", false},
		{"tail 20", 0, 20, 0, "2,3", true},
		{"tail 40", 0, 40, 0, "2,3", true},
		{"tail 700", 0, 700, 0, "2,3", true},
		{"tail 1000", 0, 1000, 0, "2,3", true},
		{"v2 tail 700", 0, 700, pager.Version, "2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := small(t)
			pol.InlineLimit = 300
			if tc.paged {
				pol, _ = pager.Preset("paged")
			}
			pol.Format = pager.V1
			if tc.v1 == 0 {
				pol.Format = tc.format
			}
			w := newWorld(t, pol)
			appendSome := func(from, n int) {
				for i := from; i < from+n; i += 10 {
					w.appendN(t, i, min(10, from+n-i), 100+i*3%400) // some over the inline limit
				}
			}
			appendSome(0, tc.v1)
			if tc.v1 > 0 && tc.v2 > 0 {
				w.publish(t)
				w.cfg.Policy.Format = tc.format
				w.reopen(t)
			}
			appendSome(tc.v1, tc.v2)
			res := w.publish(t)
			want, _, _, err := read(t, w, w, remotelog.Cursor{})
			if err != nil {
				t.Fatal(err)
			}
			hp := page(t, w, res.Head)
			if tc.paged != (len(hp.Tail) > 0) {
				t.Fatalf("the head has %d tail pieces", len(hp.Tail))
			}
			froms := []int{1, 50, len(want) - 5}
			if tc.paged {
				froms = []int{1, len(want) - 5, len(want), int(hp.Start) - 1, int(hp.Start)}
				for _, l := range hp.Tail {
					froms = append(froms, int(l.Start)-1, int(l.Start), int(l.Start)+1)
				}
			}
			in, _ := json.Marshal(map[string]any{"head": res.Head.String(), "blocks": logBlocks(t, w, res.Head)})
			for _, from := range froms {
				if from < 1 {
					continue
				}
				out := node(t, webLogScript, in, fmt.Sprintf("FROM=%d", from))
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if last := lines[len(lines)-1]; from == 1 && last != "versions "+tc.versions || !strings.HasPrefix(last, "versions ") || len(lines) < 2 {
					t.Fatalf("from %d: %s (want pages of versions %s)", from, last, tc.versions)
				}
				blocks := lines[len(lines)-2]
				lines = lines[:len(lines)-2]
				got := map[string]bool{}
				for _, l := range lines {
					got[l] = true
				}
				n := 0
				for _, m := range want {
					if int(m.Seq) < from {
						continue
					}
					n++
					if l := fmt.Sprintf("%d %x %x", m.Seq, m.ID[:], m.Body); !got[l] {
						t.Fatalf("from %d: message %d not read as %s\n%s", from, m.Seq, l, out)
					}
				}
				if n > len(lines) {
					t.Fatalf("from %d: %d messages read, want at least %d", from, len(lines), n)
				}
				// Inside the head's page: the head and the pieces from the
				// one holding from, and nothing else.
				if from >= int(hp.PageStart()) {
					pieces := 0
					for _, l := range hp.Tail {
						if int(l.Start) > from {
							pieces++
						}
					}
					if from < int(hp.Start) {
						pieces++ // the piece holding from
					}
					if hp.Node.Defined() {
						pieces++ // the window node: the page reads it with the head
					}
					if wantBlocks := fmt.Sprintf("blocks %d", 1+pieces); blocks != wantBlocks {
						t.Fatalf("from %d: %s fetched, want %s (the head and %d pieces or window node)", from, blocks, wantBlocks, pieces)
					}
				}
			}
		})
	}
}

// TestWebVerifierRefusesForgedTails: logs whose head's tail pieces lie,
// made by hand. remotelog's reader refuses each with ErrInvalidLog, and
// the page's verifier refuses each too (and reads the honest one whole).
func TestWebVerifierRefusesForgedTails(t *testing.T) {
	v2 := func(from, to int) []pager.Entry {
		es := entries(from, to)
		for i := range es {
			es[i] = pager.Entry{Payload: es[i].Payload}
		}
		return es
	}
	sealed := func(f *forge, p, s uint64, from, to int) cid.Cid {
		return f.page(&pager.Page{Version: pager.Version, Number: p, Start: s, Entries: v2(from, to)})
	}
	// Page 0 (1-3) sealed; the head's page 1 holds 4-5 and 6-7 in pieces
	// and 8 itself. w0 is the window's link to page 0.
	head := func(f *forge, w0 pager.Link, tail ...pager.Link) cid.Cid {
		b, _, err := pager.EncodeIndex(&pager.Index{First: 0, Pages: []pager.Link{{Cid: sealed(f, 0, 1, 1, 3), Start: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		return f.page(&pager.Page{Version: pager.Version, Number: 1, Start: 8, Entries: v2(8, 8), Head: true,
			Window: []pager.Link{w0}, Index: []pager.IndexLink{{Cid: f.put(b), Page: 0, Start: 1}}, Tail: tail})
	}
	p0 := func(f *forge) pager.Link { return pager.Link{Cid: sealed(f, 0, 1, 1, 3), Start: 1} }
	for _, tc := range []struct {
		name            string
		build           func(f *forge) cid.Cid
		goText, webText string // empty: honest
	}{
		{"honest", func(f *forge) cid.Cid {
			return head(f, p0(f), pager.Link{Cid: sealed(f, 1, 4, 4, 5), Start: 4}, pager.Link{Cid: sealed(f, 1, 6, 6, 7), Start: 6})
		}, "", ""},
		{"a piece of another page", func(f *forge) cid.Cid {
			return head(f, p0(f), pager.Link{Cid: sealed(f, 0, 4, 4, 5), Start: 4}, pager.Link{Cid: sealed(f, 1, 6, 6, 7), Start: 6})
		}, "says it is page 0 but is linked as page 1", "not a piece of page 1 from sequence 4"},
		{"a piece that starts elsewhere", func(f *forge) cid.Cid {
			return head(f, p0(f), pager.Link{Cid: sealed(f, 1, 4, 4, 5), Start: 4}, pager.Link{Cid: sealed(f, 1, 5, 5, 7), Start: 6})
		}, "starts at sequence 5 but is linked as starting at 6", "not a piece of page 1 from sequence 6"},
		{"a piece that ends early", func(f *forge) cid.Cid {
			return head(f, p0(f), pager.Link{Cid: sealed(f, 1, 4, 4, 5), Start: 4}, pager.Link{Cid: sealed(f, 1, 6, 6, 6), Start: 6})
		}, "ends at 6 but the next piece or the head starts at 8", "ends at 6, but the next piece or the head starts at 8"},
		{"a gap between pieces", func(f *forge) cid.Cid {
			return head(f, p0(f), pager.Link{Cid: sealed(f, 1, 4, 4, 4), Start: 4}, pager.Link{Cid: sealed(f, 1, 6, 6, 7), Start: 6})
		}, "ends at 4 but the next piece or the head starts at 6", "ends at 4, but the next piece or the head starts at 6"},
		{"a piece in head form", func(f *forge) cid.Cid {
			w0 := p0(f)
			b, _, _ := pager.EncodeIndex(&pager.Index{First: 0, Pages: []pager.Link{w0}})
			piece := f.page(&pager.Page{Version: pager.Version, Number: 1, Start: 6, Entries: v2(6, 7), Head: true,
				Window: []pager.Link{w0}, Index: []pager.IndexLink{{Cid: f.put(b), Page: 0, Start: 1}}})
			return head(f, w0, pager.Link{Cid: sealed(f, 1, 4, 4, 5), Start: 4}, pager.Link{Cid: piece, Start: 6})
		}, "in head form", "a head"},
		{"page 0 linked at 2", func(f *forge) cid.Cid {
			return head(f, pager.Link{Cid: sealed(f, 0, 2, 2, 3), Start: 2}, pager.Link{Cid: sealed(f, 1, 4, 4, 5), Start: 4}, pager.Link{Cid: sealed(f, 1, 6, 6, 7), Start: 6})
		}, "page 0 is linked as starting at sequence 2", "page 0 is linked as starting at sequence 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForge(t)
			h := tc.build(f)
			f.publishHead(h)
			n, err := f.read(remotelog.Cursor{})
			if tc.goText == "" && (err != nil || n != 8) || tc.goText != "" && (!errors.Is(err, remotelog.ErrInvalidLog) || !strings.Contains(err.Error(), tc.goText)) {
				t.Fatalf("remotelog's reader: %d messages, %v; want %q", n, err, tc.goText)
			}
			in, _ := json.Marshal(map[string]any{"head": h.String(), "blocks": logBlocks(t, f.w, h)})
			out := strings.TrimSpace(node(t, webLogScript, in, "FROM=1"))
			if tc.webText != "" {
				if !strings.HasPrefix(out, "refused ") || !strings.Contains(out, tc.webText) {
					t.Fatalf("the page's verifier: %s\nwant it refused: %q", out, tc.webText)
				}
				return
			}
			lines := strings.Split(out, "\n")
			if len(lines) != 8+2 {
				t.Fatalf("the page's verifier read:\n%s", out)
			}
			for i, l := range lines[:8] {
				id, wire := msg(i + 1)
				m, _, err := mvds.UnmarshalMessage(wire)
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("%d %x %x", i+1, id[:], m.Body); l != want {
					t.Fatalf("message %d read as %s, want %s", i+1, l, want)
				}
			}
		})
	}
}

// webV3Script checks the verifier on the v3 golden vectors: a head that
// links its window node instead of carrying w and x, the node, attaching
// one to the other, and refusals of what pager refuses.
const webV3Script = `
import { CID, checkBlock, decodePage, decodeWindowNode, attach, Refused } from './verify.js'
` + webVectorHelpers + `const [hc, hb] = get('head 5 v3 tail=2'), [nc, nb] = get('window 5'), [zc, zb] = get('head 0 v3')
for (const [c, b] of [[hc, hb], [nc, nb], [zc, zb]]) await checkBlock(c, b)
const h = decodePage(hc, hb)
if (h.v !== 3 || h.p !== 5 || h.s !== 15 || h.pageStart !== 11 || !h.head || h.window !== null || h.index !== null || !h.node.equals(nc) || h.tail.length !== 2) fail('head: ' + JSON.stringify([h.v, h.p, h.s, h.pageStart, h.head]))
const n = decodeWindowNode(nc, nb)
if (n.p !== 5 || n.window.length !== 2 || n.window[0].s !== 9 || n.index.length !== 2 || n.index[1].n !== 3) fail('window node')
attach(h, n)
if (h.window.length !== 2 || h.index.length !== 2) fail('attached')
const z = decodePage(zc, zb)
if (z.v !== 3 || z.p !== 0 || !z.head || z.node || z.window.length !== 0 || z.index.length !== 0) fail('head 0')
refuses('a window node as a page', () => decodePage(nc, nb))
refuses('a page as a window node', () => decodeWindowNode(hc, hb))
refuses('another node', () => attach(decodePage(hc, hb), decodeWindowNode(zc, nb)))
const other = decodeWindowNode(nc, nb); other.p = 6
refuses('a node of another page', () => attach(decodePage(hc, hb), other))
const swap = (b, from, to) => { const i = b.findIndex((x, k) => b.subarray(k, k + from.length).every((y, j) => y === from[j])); if (i < 0) fail('no ' + from); const c = b.slice(); c.set(to, i); return c }
refuses('n on a v2 head', () => decodePage(hc, swap(hb, [0x61, 0x76, 0x03], [0x61, 0x76, 0x02])))
refuses('a window node of version 2', () => decodeWindowNode(nc, swap(nb, [0x61, 0x76, 0x03], [0x61, 0x76, 0x02])))
refuses('a window node of page 0', () => decodeWindowNode(nc, swap(nb, [0x61, 0x70, 0x05], [0x61, 0x70, 0x00])))
refuses('a window node of page 1', () => decodeWindowNode(nc, swap(nb, [0x61, 0x70, 0x05], [0x61, 0x70, 0x01])))
console.log('ok')
`

// TestWebVerifierV3: the verifier on the v3 golden vectors
// (testdata/pages/v3.txt) and on changes of them that pager refuses too.
func TestWebVerifierV3(t *testing.T) {
	vectors := goldenPages(t, "v3.txt")
	for what, m := range map[string][2][]byte{
		"head 5 v3 tail=2": {{0x61, 0x76, 0x03}, {0x61, 0x76, 0x02}},
		"window 5":         {{0x61, 0x70, 0x05}, {0x61, 0x70, 0x01}},
	} {
		b, _ := hex.DecodeString(vectors[what][1])
		changed := bytes.Replace(b, m[0], m[1], 1)
		_, perr := pager.Decode(changed)
		_, werr := pager.DecodeWindowNode(changed)
		if perr == nil || werr == nil {
			t.Fatalf("pager accepts %s with %x made %x", what, m[0], m[1])
		}
	}
	v, _ := json.Marshal(vectors)
	if out := node(t, webV3Script, nil, "VECTORS="+string(v)); strings.TrimSpace(out) != "ok" {
		t.Fatalf("verify.js: %s", out)
	}
}

// webVectorHelpers are the golden-vector scripts' helpers: hex, fail,
// refuses (a Refused error, nothing else) and get (a vector's CID and bytes).
const webVectorHelpers = `const hex = (s) => Uint8Array.from(s.match(/../g) || [], (x) => parseInt(x, 16))
const fail = (m) => { console.error(m); process.exit(1) }
const refuses = (what, f) => {
  try { f() } catch (e) { if (e instanceof Refused) return; fail(what + ': threw ' + e) }
  fail(what + ': accepted')
}
const v = JSON.parse(process.env.VECTORS)
const get = (k) => [CID.parse(v[k][0]), hex(v[k][1])]
`
