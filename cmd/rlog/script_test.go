package main

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"rlog": func() {
			os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
		},
	})
}

// TestScripts runs the user sessions in testdata/script, each in its own
// directory, with rlog as a real process.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("RLOG_KUBO_API", os.Getenv("RLOG_KUBO_API"))
			e.Setenv("RLOG_KUBO_IPFS_PATH", os.Getenv("RLOG_KUBO_IPFS_PATH"))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "kubo" {
				return os.Getenv("RLOG_KUBO_API") != "" && os.Getenv("RLOG_KUBO_IPFS_PATH") != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}
