package remotelog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// SourceCloser is a Source to release after use.
type SourceCloser interface {
	Source
	io.Closer
}

// opener builds a source from an argument it recognises.
type opener struct {
	scheme string // prefix before ':' that selects it, or "" for paths
	help   string
	open   func(arg string) (SourceCloser, error)
}

// sources is the registry of where a reader can read. Later backends
// (Kubo, gateways, CAR files) register here; it is the one way to build one.
var sources = []opener{
	{scheme: "repo", help: "repo:DIR or a directory: another rlog repo on this machine, read-only", open: openRepoSource},
}

// SourceHelp lists the accepted source forms, one per line.
func SourceHelp() string {
	var b strings.Builder
	for _, o := range sources {
		fmt.Fprintf(&b, "  %s\n", o.help)
	}
	return b.String()
}

// OpenSource opens a reader's source from a URL-like argument.
func OpenSource(arg string) (SourceCloser, error) {
	if arg == "" {
		return nil, errors.New("remotelog: empty source")
	}
	scheme, rest, hasScheme := strings.Cut(arg, ":")
	for _, o := range sources {
		if hasScheme && scheme == o.scheme {
			return o.open(rest)
		}
	}
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		return openRepoSource(arg)
	}
	return nil, fmt.Errorf("remotelog: source %q: not a directory and no known scheme; sources are:\n%s", arg, SourceHelp())
}

func openRepoSource(dir string) (SourceCloser, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r, err := OpenReadOnly(abs)
	if err != nil {
		return nil, err
	}
	return r, nil
}
