package mvds_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"rlog/mvds"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the interaction scripts")

// TestInteraction runs the plain-text protocol scripts in
// testdata/interaction, in the style of etcd raft's interaction tests. Each
// command is followed by "----" and its expected output. Commands:
//
//	nodes N [mode=batch|interactive] [patience=P] [max=M]   N nodes, one group, all peers
//	send NODE BODY [mode=...] [ephemeral=true]   NODE syncs a new message
//	stored [NODE...]             the messages in each node's saved state
//	have NODE BODY               NODE got the message another way (the remote log)
//	tick [NODE...]               an epoch passes (all nodes by default); prints what they send
//	deliver [drop=A->B,...] [dup=A->B]   delivers what is in flight, dropping the named payloads (duplicating one)
//	stabilize                    tick and deliver without loss until nothing is owed
//	state [NODE...]              prints every retransmission record
//	restart NODE                 saves NODE's state as JSON and builds it again from that
//	remove-peer NODE PEER        NODE stops syncing with PEER
func TestInteraction(t *testing.T) {
	files, _ := filepath.Glob("testdata/interaction/*.txt")
	if len(files) == 0 {
		t.Fatal("no interaction scripts")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScript(t, f) })
	}
}

type script struct {
	t        *testing.T
	nodes    []*mvds.Node
	cfgs     []mvds.Config
	inflight []flight
	bodies   map[mvds.MessageID]string
	byBody   map[string]mvds.Message
	got      []map[mvds.MessageID]int
}

type flight struct {
	from, to int
	p        mvds.Payload
}

func runScript(t *testing.T, path string) {
	s := &script{t: t, bodies: map[mvds.MessageID]string{}, byBody: map[string]mvds.Message{}}
	runTextScript(t, path, s.run)
}

// runTextScript runs a plain-text script: blocks separated by a blank
// line, each a command (after # comment lines), "----" and the expected
// output of run(command). With -rewrite, the expected outputs are
// rewritten.
func runTextScript(t *testing.T, path string, run func(cmd string) string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, block := range strings.Split(string(data), "\n\n") {
		block = strings.Trim(block, "\n")
		if block == "" {
			continue
		}
		cmdPart, want, hasSep := strings.Cut(block, "\n----\n")
		if !hasSep {
			cmdPart = strings.TrimSuffix(block, "\n----")
		}
		var lines []string
		var cmd string
		for _, l := range strings.Split(cmdPart, "\n") {
			if strings.HasPrefix(l, "#") {
				lines = append(lines, l)
				continue
			}
			cmd = l
		}
		got := run(cmd)
		for _, l := range lines {
			out.WriteString(l + "\n")
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n\n", cmd, got)
		if !*rewrite && got != strings.TrimRight(want, "\n") {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", path, cmd, got, want)
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *script) name(id mvds.MessageID) string {
	if b, ok := s.bodies[id]; ok {
		return b
	}
	return id.String()[:8]
}

func (s *script) payload(p mvds.Payload) string {
	var parts []string
	for _, m := range p.Messages {
		parts = append(parts, "MESSAGE("+s.name(m.ID())+")")
	}
	for _, list := range []struct {
		name string
		ids  [][]byte
	}{{"OFFER", p.Offers}, {"REQUEST", p.Requests}, {"ACK", p.Acks}} {
		for _, raw := range list.ids {
			parts = append(parts, list.name+"("+s.name(mvds.MessageID(raw))+")")
		}
	}
	return strings.Join(parts, " ")
}

func (s *script) nodeArg(a string) int {
	n, err := strconv.Atoi(a)
	if err != nil || n < 1 || n > len(s.nodes) {
		s.t.Fatalf("no node %q", a)
	}
	return n - 1
}

// nodesArg is the nodes named in args, or all of them.
func (s *script) nodesArg(args []string) []int {
	var idx []int
	for _, a := range args {
		idx = append(idx, s.nodeArg(a))
	}
	if len(idx) == 0 {
		for i := range s.nodes {
			idx = append(idx, i)
		}
	}
	return idx
}

// parseCommand splits a script command into its words, its arguments and
// its key=value options.
func parseCommand(cmd string) (words, args []string, kv map[string]string) {
	words = strings.Fields(cmd)
	kv = map[string]string{}
	for _, a := range words[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			kv[k] = v
		} else {
			args = append(args, a)
		}
	}
	return words, args, kv
}

func peer(i int) mvds.PeerID { return mvds.PeerID(strconv.Itoa(i + 1)) }

func (s *script) run(cmd string) string {
	f, args, kv := parseCommand(cmd)
	mode := func() mvds.Mode {
		if kv["mode"] == "interactive" {
			return mvds.Interactive
		}
		return mvds.Batch
	}
	var out []string
	switch f[0] {
	case "nodes":
		n, _ := strconv.Atoi(args[0])
		b := mvds.DefaultBackoff
		if v, ok := kv["patience"]; ok {
			b.Patience, _ = strconv.Atoi(v)
		}
		if v, ok := kv["max"]; ok {
			b.Max, _ = strconv.ParseInt(v, 10, 64)
		}
		for i := range n {
			cfg := mvds.Config{ID: peer(i), Mode: mode(), Backoff: b}
			s.cfgs = append(s.cfgs, cfg)
			s.nodes = append(s.nodes, mvds.NewNode(cfg))
			s.got = append(s.got, map[mvds.MessageID]int{})
		}
		for i, nd := range s.nodes {
			for j := range s.nodes {
				if i != j {
					nd.AddPeer(grp, peer(j))
				}
			}
		}
		return fmt.Sprintf("%d nodes, %s mode", n, mode())
	case "send", "have":
		i := s.nodeArg(args[0])
		m, ok := s.byBody[args[1]] // a body names one message
		if !ok {
			m = mvds.Message{GroupID: grp, Timestamp: int64(len(s.bodies)), Body: []byte(args[1])}
			if kv["ephemeral"] == "true" {
				m.Metadata = &mvds.Metadata{Ephemeral: true}
			}
			s.bodies[m.ID()], s.byBody[args[1]] = args[1], m
		}
		if f[0] == "have" {
			s.nodes[i].Have(m)
			s.got[i][m.ID()]++
			return fmt.Sprintf("%d has %s", i+1, args[1])
		}
		if _, ok := kv["mode"]; ok {
			s.nodes[i].SendMode(m, mode())
		} else {
			s.nodes[i].Send(m)
		}
		s.got[i][m.ID()]++
		return fmt.Sprintf("%d sends %s", i+1, args[1])
	case "tick":
		for _, i := range s.nodesArg(args) {
			nd := s.nodes[i]
			nd.Tick()
			rd := nd.Ready()
			peers := slices.Sorted(maps.Keys(rd.Payloads))
			for _, p := range peers {
				j, _ := strconv.Atoi(string(p))
				s.inflight = append(s.inflight, flight{i, j - 1, rd.Payloads[p]})
				out = append(out, fmt.Sprintf("%d->%d %s", i+1, j, s.payload(rd.Payloads[p])))
			}
			nd.Advance()
		}
		if len(out) == 0 {
			return "nothing sent"
		}
	case "deliver":
		drop := map[string]bool{}
		if v, ok := kv["drop"]; ok {
			for _, d := range strings.Split(v, ",") {
				drop[d] = true
			}
		}
		flights := s.inflight
		s.inflight = nil
		for _, fl := range flights {
			key := fmt.Sprintf("%d->%d", fl.from+1, fl.to+1)
			if drop[key] || drop["all"] {
				out = append(out, key+" lost")
				continue
			}
			out = append(out, s.deliver(fl)...)
			if kv["dup"] == key || kv["dup"] == "all" {
				out = append(out, s.deliver(fl)...)
			}
		}
		if len(out) == 0 {
			return "nothing in flight"
		}
	case "stabilize":
		epochs := 0
		for ; epochs < 1000; epochs++ {
			owed := len(s.inflight) > 0
			for _, nd := range s.nodes {
				owed = owed || len(nd.Records()) > 0
			}
			if !owed && epochs > 0 {
				break
			}
			s.run("tick")
			s.run("deliver")
		}
		return fmt.Sprintf("stable after %d epochs", epochs)
	case "state":
		for _, i := range s.nodesArg(args) {
			nd := s.nodes[i]
			var have []string
			for id, n := range s.got[i] {
				have = append(have, fmt.Sprintf("%s×%d", s.name(id), n))
			}
			slices.Sort(have)
			out = append(out, fmt.Sprintf("%d: epoch %d, delivered %s", i+1, nd.Epoch(), strings.Join(have, " ")))
			for _, r := range nd.Records() {
				out = append(out, fmt.Sprintf("  %s(%s) to %s: sent %d, due %d", r.Type, s.name(r.ID), r.Peer, r.SendCount, r.SendEpoch))
			}
		}
	case "stored":
		for _, i := range s.nodesArg(args) {
			var names []string
			for _, m := range s.nodes[i].State().Messages {
				names = append(names, s.name(m.ID()))
			}
			slices.Sort(names)
			out = append(out, fmt.Sprintf("%d stores %s", i+1, strings.Join(append(names, "(end)"), " ")))
		}
	case "restart":
		i := s.nodeArg(args[0])
		b, err := json.Marshal(s.nodes[i].State())
		if err != nil {
			s.t.Fatal(err)
		}
		var st mvds.State
		if err := json.Unmarshal(b, &st); err != nil {
			s.t.Fatal(err)
		}
		nd, err := mvds.RestoreNode(s.cfgs[i], st)
		if err != nil {
			s.t.Fatal(err)
		}
		s.nodes[i] = nd
		return fmt.Sprintf("%d restarted from %d bytes of state", i+1, len(b))
	case "remove-peer":
		i := s.nodeArg(args[0])
		s.nodes[i].RemovePeer(grp, mvds.PeerID(args[1]))
		return fmt.Sprintf("%d no longer syncs with %s", i+1, args[1])
	default:
		s.t.Fatalf("unknown command %q", f[0])
	}
	return strings.Join(out, "\n")
}

func (s *script) deliver(fl flight) []string {
	nd := s.nodes[fl.to]
	if err := nd.Step(peer(fl.from), fl.p); err != nil {
		s.t.Fatal(err)
	}
	rd := nd.Ready()
	var names []string
	for _, m := range rd.Deliver {
		s.got[fl.to][m.ID()]++
		names = append(names, s.name(m.ID()))
	}
	nd.Advance()
	line := fmt.Sprintf("%d<-%d %s", fl.to+1, fl.from+1, s.payload(fl.p))
	if len(names) > 0 {
		line += "; delivers " + strings.Join(names, " ")
	}
	return []string{line}
}
