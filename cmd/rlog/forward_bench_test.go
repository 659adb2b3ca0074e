package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"rlog/remotelog"
)

// BenchmarkForwarded measures what a command costs when a node owns the
// repo and runs it (over the control socket), against the same command
// run in the node without the socket, and run directly in a repo no node
// owns (which opens the repo each time). The forwarding overhead is
// forwarded minus in-node.
//
//	go test -run - -bench Forwarded ./cmd/rlog
func BenchmarkForwarded(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "w")
	ctx := context.Background()
	env := func(k string) string {
		if k == "RLOG_PATH" {
			return dir
		}
		return ""
	}
	rlog := func(args ...string) {
		var out, errb bytes.Buffer
		if code := run(ctx, args, strings.NewReader(""), &out, &errb, env); code != exitOK {
			b.Fatalf("rlog %v: exit %d: %s", args, code, errb.String())
		}
	}
	rlog("init")
	bodies := make([]string, 100)
	for i := range bodies {
		bodies[i] = "message " + strings.Repeat("x", i)
	}
	rlog(append([]string{"append"}, bodies...)...)
	rlog("publish")
	line := []string{"log", "--since", "90"}

	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			rlog(line...)
		}
	})
	repo, err := remotelog.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	node, err := remotelog.StartNode(ctx, repo, remotelog.NodeConfig{Commands: nodeCommands})
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	b.Run("in-node", func(b *testing.B) {
		for b.Loop() {
			if code := nodeCommands(ctx, node, remotelog.CommandRequest{Args: line}, io.Discard, io.Discard); code != exitOK {
				b.Fatalf("exit %d", code)
			}
		}
	})
	b.Run("forwarded", func(b *testing.B) {
		for b.Loop() {
			rlog(line...)
		}
	})
}
