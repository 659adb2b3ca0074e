package main

import (
	"context"
	"fmt"
	"net"
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
		Dir:  "testdata/script",
		Cmds: bgCmds,
		Setup: func(e *testscript.Env) error {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			e.Setenv("PORT", fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
			l2, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			e.Setenv("PORT2", fmt.Sprint(l2.Addr().(*net.TCPAddr).Port))
			l.Close()
			l2.Close()
			e.Setenv("RLOG_KUBO_API", os.Getenv("RLOG_KUBO_API"))
			e.Setenv("RLOG_KUBO_IPFS_PATH", os.Getenv("RLOG_KUBO_IPFS_PATH"))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "kubo":
				return os.Getenv("RLOG_KUBO_API") != "" && os.Getenv("RLOG_KUBO_IPFS_PATH") != "", nil
			case "large":
				return os.Getenv("RLOG_LARGE_TESTS") != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}
