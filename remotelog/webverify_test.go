package remotelog_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// golden reads a "name-or-cid | hex" vector file of testdata.
func golden(t *testing.T, path string) (key, hexBytes string) {
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
