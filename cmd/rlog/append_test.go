package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A slow producer (a person typing into 'rlog append') has each line
// acknowledged as soon as it is durable, not when a batch fills or input
// ends: the test writes a line into a real pipe, waits for its
// acknowledgement, and only then writes the next.
func TestAppendSlowProducer(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "w")
	if code, _, errs := rlogIn(t, repo, "", "init"); code != 0 {
		t.Fatalf("init: exit %d: %s", code, errs)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	env := func(k string) string {
		if k == "RLOG_PATH" {
			return repo
		}
		return ""
	}
	var errb strings.Builder
	exited := make(chan int, 1)
	go func() {
		code := run(context.Background(), []string{"append"}, inR, outW, &errb, env)
		inR.Close()
		outW.Close()
		exited <- code
	}()
	acks := make(chan string)
	go func() {
		defer close(acks)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			acks <- sc.Text()
		}
	}()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	// A line with a carriage return, and a last one without an end of
	// line, as bufio.ScanLines splits them.
	lines := []string{"one\n", "two\r\n", "\n", "four"}
	for i, line := range lines {
		if _, err := inW.WriteString(line); err != nil {
			t.Fatal(err)
		}
		if i == len(lines)-1 {
			inW.Close() // the last line ends with the input
		}
		select {
		case ack, ok := <-acks:
			if !ok {
				t.Fatalf("line %d: append ended before acknowledging it (exit %d): %s", i+1, <-exited, errb.String())
			}
			if want := fmt.Sprintf("%d\t", i+1); !strings.HasPrefix(ack, want) {
				t.Fatalf("line %d: acknowledged as %q, want %q...", i+1, ack, want)
			}
		case <-deadline.C:
			t.Fatalf("line %d (%q) was not acknowledged while the producer waited for it", i+1, line)
		}
	}
	if code := <-exited; code != 0 {
		t.Fatalf("append: exit %d: %s", code, errb.String())
	}
	_, log, _ := rlogIn(t, repo, "", "log")
	var bodies []string
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		f := strings.SplitN(l, "\t", 4)
		bodies = append(bodies, f[len(f)-1])
	}
	if got, want := strings.Join(bodies, "|"), "one|two||four"; got != want {
		t.Errorf("log bodies %q, want %q\n%s", got, want, log)
	}
}
