package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// Every command has examples, and --api only where a Kubo daemon is used.
func TestHelp(t *testing.T) {
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	withAPI := []string{"init", "publish", "recover", "fetch", "follow", "resolve", "backup", "check", "inspect", "block get", "pin", "keep", "sync", "run"}
	forEachCommand(a.root(), func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || (c.HasParent() && c.Parent().Name() == "completion") {
			return
		}
		path := strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), "rlog"), " ")
		if c.Example == "" {
			t.Errorf("%q has no Examples", c.CommandPath())
		}
		if got, want := c.Flags().Lookup("api") != nil, slices.Contains(withAPI, path); got != want {
			t.Errorf("%q: --api flag %v, want %v", c.CommandPath(), got, want)
		}
	})
}

// Every command's help reads in a terminal: no line of it (text, examples,
// flags) wider than helpWidth, and its text in paragraphs of at most
// helpParagraph lines.
func TestHelpLayout(t *testing.T) {
	const helpParagraph = 10
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	forEachCommand(a.root(), func(c *cobra.Command) {
		var out strings.Builder
		c.SetOut(&out)
		if err := c.Help(); err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(out.String(), "\n") {
			if n := utf8.RuneCountInString(line); n > helpWidth {
				t.Errorf("%q --help: line %d is %d wide (over %d): %s", c.CommandPath(), i+1, n, helpWidth, line)
			}
		}
		run := 0
		for i, line := range strings.Split(c.Long, "\n") {
			if run = run + 1; strings.TrimSpace(line) == "" {
				run = 0
			}
			if run == helpParagraph+1 {
				t.Errorf("%q --help: the paragraph ending at line %d runs over %d lines: break it", c.CommandPath(), i+1, helpParagraph)
			}
		}
	})
}
