package main

import (
	"io"
	"slices"
	"strings"
	"testing"

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
