// Command rsswrap runs a program and writes its peak resident memory, in
// kB, to the file $RSSWRAP_OUT.
//
// The maxrss script command runs programs through it because Linux counts
// in a child's peak the memory of the process it was started from (the
// high-water mark of the address space the exec replaced): started from the
// test binary, any child would measure at least the test binary's size.
// Started from this small program, a child measures its own.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rsswrap PROG ARGS...")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		fmt.Fprintln(os.Stderr, "rsswrap:", err)
		os.Exit(2)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	if err := os.WriteFile(os.Getenv("RSSWRAP_OUT"), []byte(fmt.Sprint(rss)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rsswrap:", err)
		os.Exit(2)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}
