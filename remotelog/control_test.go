package remotelog_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"rlog/remotelog"
)

// The control socket is 0600 in a 0700 directory, whatever was there
// before.
func TestControlSocketIsPrivate(t *testing.T) {
	repo, _, _, _ := servedRepo(t)
	run := filepath.Dir(remotelog.ControlSocket(repo.Dir))
	if err := os.Mkdir(run, 0o777); err != nil { // left open by someone
		t.Fatal(err)
	}
	os.Chmod(run, 0o777)
	ln, err := remotelog.ListenControl(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for path, want := range map[string]os.FileMode{run: os.ModeDir | 0o700, remotelog.ControlSocket(repo.Dir): os.ModeSocket | 0o600} {
		st, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
		}
	}
}

// A process of another user cannot use the owner: it cannot reach the
// socket in its private directory, and on a socket it can reach the owner
// refuses it (its uid read from the socket, SO_PEERCRED). This needs root,
// to run a client as another user.
func TestControlRefusesAnotherUsersProcess(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a client as another user")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("needs curl, as the other user's client")
	}
	repo, w, srv, _ := servedRepo(t)
	serveControl(t, repo, srv)

	// The same server on a socket anyone may connect to.
	open, err := os.MkdirTemp("", "rlog-control-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(open)
	os.Chmod(open, 0o755)
	openSock := filepath.Join(open, "s")
	ln2, err := net.Listen("unix", openSock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(openSock, 0o777)
	hs2 := srv.ControlServer()
	go hs2.Serve(ln2)
	defer hs2.Close()

	nobody := func(sock string) (string, int) {
		cmd := exec.Command(curl, "-sS", "--unix-socket", sock, "-d", `{"bodies":["aW5qZWN0ZWQtYnktbm9ib2R5"]}`, "http://rlog/append")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := nobody(remotelog.ControlSocket(repo.Dir)); code == 0 {
		t.Errorf("another user reached the control socket: %s", out)
	}
	if out, _ := nobody(openSock); !strings.Contains(out, "uid 65534 may not use the repo of uid 0") {
		t.Errorf("another user on a reachable socket: %q, want refused", out)
	}
	if w.Len() != 0 {
		t.Fatalf("another user appended %d messages", w.Len())
	}
	// The owner's own processes are served.
	owner, err := remotelog.DialControl(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Append(context.Background(), repo.DefaultGroup(), [][]byte{[]byte("mine")}); err != nil {
		t.Fatal(err)
	}
}
