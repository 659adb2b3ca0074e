package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func (a *app) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print rlog's version and the Go version it was built with",
		Long: `Print the version of the rlog module this binary was built from, as Go records it
(a tag such as v1.2.3, a pseudo-version, or (devel) for a build from a checkout), the
VCS revision when the build recorded one, and the Go version.`,
		Example: `  rlog version
  rlog version --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionJSON{Version: "(unknown)", Go: runtime.Version()}
			if bi, ok := debug.ReadBuildInfo(); ok {
				v.Version = bi.Main.Version
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision":
						v.Revision = s.Value
					case "vcs.modified":
						v.Modified = s.Value == "true"
					}
				}
			}
			if asJSON {
				return writeJSON(a.stdout, v)
			}
			fmt.Fprintf(a.stdout, "rlog %s", v.Version)
			if v.Revision != "" {
				fmt.Fprintf(a.stdout, " (revision %s", v.Revision)
				if v.Modified {
					fmt.Fprint(a.stdout, ", modified")
				}
				fmt.Fprint(a.stdout, ")")
			}
			fmt.Fprintf(a.stdout, "\n%s\n", v.Go)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version as JSON")
	return cmd
}

// versionJSON is what `rlog version --json` prints.
type versionJSON struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}
