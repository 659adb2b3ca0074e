package remotelog_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rlog/pager"
)

// verifiedFetchScript fetches ipns://$NAME (the head page) and
// ipfs://$PAYLOAD as raw blocks with Helia's verified-fetch, using the
// gateway under test as its only gateway and its only router, and prints
// each as base64 on a line.
const verifiedFetchScript = `
import { createVerifiedFetch } from '@helia/verified-fetch'
const gw = process.env.GATEWAY
const vf = await createVerifiedFetch({ gateways: [gw], routers: [gw], allowInsecure: true, allowLocal: true })
try {
  for (const url of ['ipns://' + process.env.NAME, 'ipfs://' + process.env.PAYLOAD]) {
    const resp = await vf(url, { headers: { accept: 'application/vnd.ipld.raw' }, signal: AbortSignal.timeout(60000) })
    if (!resp.ok) throw new Error(url + ': ' + resp.status + ' ' + await resp.text())
    console.log(Buffer.from(await resp.arrayBuffer()).toString('base64'))
  }
} finally {
  await vf.stop()
}
`

// TestVerifiedFetchReadsThroughServe: Helia's @helia/verified-fetch on
// Node 22 resolves ipns://NAME with rlog serve as its router (Delegated
// Routing V1) and fetches the head page and a payload from it as its
// gateway, verifying both.
func TestVerifiedFetchReadsThroughServe(t *testing.T) {
	node, dir := os.Getenv("RLOG_NODE"), os.Getenv("RLOG_WEB_DIR")
	if node == "" || dir == "" {
		missing(t, "RLOG_NODE and RLOG_WEB_DIR are not set: run .ci/web.sh for Node 22 and @helia/verified-fetch")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@helia", "verified-fetch")); err != nil {
		missing(t, "no @helia/verified-fetch in "+dir+": run .ci/web.sh")
	}
	_, hs, res, name := linkedServed(t, 5) // every payload a separate raw block
	_, head := httpGet(t, hs.URL+"/ipfs/"+res.Head.String()+"?format=raw")
	pg, err := pager.Decode(head)
	if err != nil {
		t.Fatal(err)
	}
	payload := pg.Entries[0].Ref
	_, want := httpGet(t, hs.URL+"/ipfs/"+payload.String()+"?format=raw")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--input-type=module", "--eval", verifiedFetchScript)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GATEWAY="+hs.URL, "NAME="+name.String(), "PAYLOAD="+payload.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verified-fetch: %v\n%s", err, stderr.String())
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 {
		t.Fatalf("verified-fetch printed %q, stderr %s", out, stderr.String())
	}
	for i, w := range [][]byte{head, want} {
		got, err := base64.StdEncoding.DecodeString(lines[i])
		if err != nil || !bytes.Equal(got, w) {
			t.Errorf("verified-fetch block %d: %d bytes (%v), want the served %d", i, len(got), err, len(w))
		}
	}
}
