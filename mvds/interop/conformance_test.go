//go:build !race

package interop_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	gproto "github.com/golang/protobuf/proto"
	sproto "github.com/status-im/mvds/protobuf"
	vproto "github.com/vacp2p/mvds/protobuf"
	"google.golang.org/protobuf/proto"

	"rlog/mvds"
)

// TestConformanceBytesAreTheReferences reads every payload of the
// conformance scripts (../testdata/conformance) with the decoder of the
// lineage whose numbering it is in, vacp2p/mvds for 1..4 and status-im/mvds
// for 5001..: the payloads the scripts give to rlog and the ones rlog
// writes. Each must decode there, to as many ACKs, OFFERs, REQUESTs and
// MESSAGEs as rlog reads, with the same message ids.
func TestConformanceBytesAreTheReferences(t *testing.T) {
	files, _ := filepath.Glob("../testdata/conformance/*.txt")
	if len(files) == 0 {
		t.Fatal("no conformance scripts")
	}
	// "recv PEER HEX" then "R<-PEER NUMBERING: ...", and "R->PEER NUMBERING HEX".
	recv := regexp.MustCompile(`(?m)^recv \S+ ([0-9a-f]+)\n----\nR<-\S+ (1\.\.4|5001\.\.):`)
	sent := regexp.MustCompile(`(?m)^R->\S+ (1\.\.4|5001\.\.) ([0-9a-f]+)$`)
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range recv.FindAllStringSubmatch(string(data), -1) {
			checkReference(t, filepath.Base(f), m[2], m[1])
			n++
		}
		for _, m := range sent.FindAllStringSubmatch(string(data), -1) {
			checkReference(t, filepath.Base(f), m[1], m[2])
			n++
		}
	}
	t.Logf("%d payloads read by the references", n)
	if n < 20 {
		t.Fatalf("only %d payloads found in the scripts", n)
	}
}

// checkReference decodes h with the reference of numbering num and with
// rlog, and compares.
func checkReference(t *testing.T, file, num, h string) {
	t.Helper()
	wire, err := hex.DecodeString(h)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	ours, _, err := mvds.UnmarshalPayload(wire)
	if err != nil {
		t.Fatalf("%s: rlog cannot read %s: %v", file, h, err)
	}
	var acks, offers, requests [][]byte
	var ids [][32]byte
	if num == "1..4" {
		var p vproto.Payload
		if err := gproto.Unmarshal(wire, &p); err != nil {
			t.Errorf("%s: vacp2p/mvds cannot read %s: %v", file, h, err)
			return
		}
		acks, offers, requests = p.Acks, p.Offers, p.Requests
		for _, m := range p.Messages {
			ids = append(ids, m.ID())
		}
	} else {
		p := &sproto.Payload{}
		if err := proto.Unmarshal(wire, p); err != nil {
			t.Errorf("%s: status-im/mvds cannot read %s: %v", file, h, err)
			return
		}
		acks, offers, requests = p.Acks, p.Offers, p.Requests
		for _, m := range p.Messages {
			ids = append(ids, m.ID())
		}
	}
	same := func(a, b [][]byte) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if string(a[i]) != string(b[i]) {
				return false
			}
		}
		return true
	}
	if !same(acks, ours.Acks) || !same(offers, ours.Offers) || !same(requests, ours.Requests) || len(ids) != len(ours.Messages) {
		t.Errorf("%s: %s reads %s as %d ACKs, %d OFFERs, %d REQUESTs, %d MESSAGEs; rlog as %d, %d, %d, %d", file, num, abbreviate(h),
			len(acks), len(offers), len(requests), len(ids), len(ours.Acks), len(ours.Offers), len(ours.Requests), len(ours.Messages))
		return
	}
	for i, id := range ids {
		if mvds.MessageID(id) != ours.Messages[i].ID() {
			t.Errorf("%s: message %d of %s has id %x there, %s in rlog", file, i, abbreviate(h), id, ours.Messages[i].ID())
		}
	}
}

func abbreviate(h string) string {
	if len(h) > 40 {
		return h[:40] + "…"
	}
	return h
}
