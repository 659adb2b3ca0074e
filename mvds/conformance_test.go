package mvds_test

import (
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"rlog/mvds"
)

// TestConformance runs the scripts in testdata/conformance: one rlog node,
// R, and payloads byte for byte as each deployed lineage writes them
// (vacp2p/mvds >= v0.0.24 in the 1..4 numbering, status-im/mvds in the
// specification's 5001..), in the format of the interaction scripts.
// Commands:
//
//	node [mode=batch|interactive] peers=A,B,...   R, in group 0x01..0x20 with those peers
//	send BODY ts=N [ephemeral]   R syncs a message of the group
//	recv PEER HEX                R reads a payload from PEER; prints what it read and delivered
//	tick                         an epoch passes; prints each payload R writes, as hex and read back
//	records                      R's retransmission records
//	stored                       the messages in R's saved state
//
// Messages are named by their body, ids no message has by their first
// bytes. R answers each peer in the numbering the peer last wrote in, as
// its transports do (mvds.Numberings).
func TestConformance(t *testing.T) {
	files, _ := filepath.Glob("testdata/conformance/*.txt")
	if len(files) == 0 {
		t.Fatal("no conformance scripts")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c := &conformance{t: t, names: map[mvds.MessageID]string{}}
			runTextScript(t, f, c.run)
		})
	}
}

type conformance struct {
	t     *testing.T
	node  *mvds.Node
	nums  mvds.Numberings
	names map[mvds.MessageID]string
	got   map[mvds.MessageID]int
}

var conformanceGroup = func() []byte {
	g := make([]byte, 32)
	for i := range g {
		g[i] = byte(i + 1)
	}
	return g
}()

func (c *conformance) name(raw []byte) string {
	if len(raw) != 32 {
		return fmt.Sprintf("%d bytes", len(raw))
	}
	if n, ok := c.names[mvds.MessageID(raw)]; ok {
		return n
	}
	return hex.EncodeToString(raw[:4]) + "…"
}

func (c *conformance) describe(p mvds.Payload) string {
	var parts []string
	for _, m := range p.Messages {
		c.names[m.ID()] = string(m.Body)
		d := "MESSAGE(" + string(m.Body)
		if m.Ephemeral() {
			d += ", ephemeral"
		}
		parts = append(parts, d+")")
	}
	for _, list := range []struct {
		name string
		ids  [][]byte
	}{{"OFFER", p.Offers}, {"REQUEST", p.Requests}, {"ACK", p.Acks}} {
		for _, raw := range list.ids {
			parts = append(parts, list.name+"("+c.name(raw)+")")
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " ")
}

func shortNumbering(n mvds.Numbering) string {
	if n == mvds.CompactNumbering {
		return "1..4"
	}
	return "5001.."
}

func (c *conformance) run(cmd string) string {
	f, args, kv := parseCommand(cmd)
	switch f[0] {
	case "node":
		mode := mvds.Batch
		if kv["mode"] == "interactive" {
			mode = mvds.Interactive
		}
		c.node = mvds.NewNode(mvds.Config{ID: "R", Mode: mode})
		c.got = map[mvds.MessageID]int{}
		for _, p := range strings.Split(kv["peers"], ",") {
			c.node.AddPeer(conformanceGroup, mvds.PeerID(p))
		}
		return fmt.Sprintf("R, %s mode, peers %s", mode, kv["peers"])
	case "send":
		ts, err := strconv.ParseInt(kv["ts"], 10, 64)
		if err != nil {
			c.t.Fatalf("send: ts: %v", err)
		}
		m := mvds.Message{GroupID: conformanceGroup, Timestamp: ts, Body: []byte(args[0])}
		if slices.Contains(args, "ephemeral") {
			m.Metadata = &mvds.Metadata{Ephemeral: true}
		}
		c.names[m.ID()] = args[0]
		c.node.Send(m)
		return fmt.Sprintf("R sends %s (id %s)", args[0], m.ID())
	case "recv":
		from := mvds.PeerID(args[0])
		wire, err := hex.DecodeString(args[1])
		if err != nil {
			c.t.Fatalf("recv: %v", err)
		}
		p, num, err := mvds.UnmarshalPayload(wire)
		if err != nil {
			return fmt.Sprintf("R<-%s refused: %v", from, err)
		}
		c.nums.Heard(from, p, num)
		line := fmt.Sprintf("R<-%s %s: %s", from, shortNumbering(num), c.describe(p))
		if err := c.node.Step(from, p); err != nil {
			return line + "; refused: " + err.Error()
		}
		var names []string
		for _, m := range c.node.Ready().Deliver {
			c.got[m.ID()]++
			names = append(names, fmt.Sprintf("%s (×%d)", m.Body, c.got[m.ID()]))
		}
		c.node.Advance()
		if len(names) > 0 {
			line += "; delivers " + strings.Join(names, ", ")
		}
		return line
	case "tick":
		c.node.Tick()
		rd := c.node.Ready()
		c.node.Advance()
		var out []string
		for _, to := range slices.Sorted(maps.Keys(rd.Payloads)) {
			p := rd.Payloads[to]
			wire := p.MarshalNumbering(c.nums.Of(to))
			back, _, err := mvds.UnmarshalPayload(wire)
			if err != nil {
				c.t.Fatalf("R wrote a payload it cannot read: %v", err)
			}
			out = append(out, fmt.Sprintf("R->%s %s %x", to, shortNumbering(c.nums.Of(to)), wire), "  "+c.describe(back))
		}
		if len(out) == 0 {
			return "nothing sent"
		}
		return strings.Join(out, "\n")
	case "records":
		var out []string
		for _, r := range c.node.Records() {
			out = append(out, fmt.Sprintf("%s(%s) to %s: sent %d", r.Type, c.name(r.ID[:]), r.Peer, r.SendCount))
		}
		if len(out) == 0 {
			return "no records"
		}
		return strings.Join(out, "\n")
	case "stored":
		var names []string
		for _, m := range c.node.State().Messages {
			names = append(names, string(m.Body))
		}
		slices.Sort(names)
		return "R stores: " + strings.Join(append(names, "(end)"), ", ")
	}
	c.t.Fatalf("unknown command %q", f[0])
	return ""
}
