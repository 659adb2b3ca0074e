package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"rlog/internal/miniotest"
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
	plainDir = t.TempDir()
	// One MinIO server for the scripts that need one ([minio]), each with
	// its own public bucket, $BUCKET, and the AWS_* variables to reach it.
	var s3 *miniotest.Server
	if miniotest.Binary() != "" || os.Getenv("CI") == "true" {
		s3 = miniotest.Start(t)
	}
	var buckets atomic.Int32 // scripts run in parallel
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/script",
		Cmds: scriptCmds(),
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
			// A race-enabled process sleeps a second at exit by default;
			// scripts run hundreds of them.
			e.Setenv("GORACE", "atexit_sleep_ms=0")
			e.Setenv("RLOG_KUBO_API", os.Getenv("RLOG_KUBO_API"))
			e.Setenv("RLOG_KUBO_IPFS_PATH", os.Getenv("RLOG_KUBO_IPFS_PATH"))
			e.Setenv("RLOG_KUBO_IPFS", os.Getenv("RLOG_KUBO_IPFS"))
			e.Setenv("RLOG_KUBO_GW", os.Getenv("RLOG_KUBO_GW"))
			if s3 != nil {
				bucket := fmt.Sprintf("script-%d", buckets.Add(1))
				if err := s3.MakeBucket(bucket, true); err != nil {
					return err
				}
				e.Setenv("BUCKET", bucket)
				for _, kv := range s3.Env() {
					k, v, _ := strings.Cut(kv, "=")
					e.Setenv(k, v)
				}
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "kubo":
				return os.Getenv("RLOG_KUBO_API") != "" && os.Getenv("RLOG_KUBO_IPFS_PATH") != "", nil
			case "minio":
				return s3 != nil, nil
			case "large":
				return os.Getenv("RLOG_LARGE_TESTS") != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// scriptCmds are the commands scripts have beyond testscript's own: bg
// (bg_test.go) and
//
//	exits CODE PROG ARGS...  run PROG and fail unless it exits with CODE; its
//	                         output is the script's stdout/stderr after
func scriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	cmds := maps.Clone(bgCmds)
	cmds["exits"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: exits CODE PROG ARGS...")
		}
		want, err := strconv.Atoi(args[0])
		if err != nil {
			ts.Fatalf("exits: %q is not an exit code", args[0])
		}
		got := 0
		if err := ts.Exec(args[1], args[2:]...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				ts.Fatalf("exits: %v", err)
			}
			got = ee.ExitCode()
		}
		if got != want {
			ts.Fatalf("%s exited %d, want %d", args[1], got, want)
		}
	}
	return cmds
}
