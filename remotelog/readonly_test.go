package remotelog_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"rlog/remotelog"
)

// publishedRepo is a closed repo in a fresh directory with n messages
// published.
func publishedRepo(t *testing.T, n int) (dir string, name string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "w")
	cfg, _ := remotelog.DefaultConfig("paged")
	nm, err := remotelog.Init(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	for i := range n {
		if _, err := w.Append(ctx, repo.DefaultGroup(), [][]byte{body(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir, nm.String()
}

// readFolder reads the whole log published in the repo folder dir.
func readFolder(t *testing.T, dir string) int {
	t.Helper()
	r, err := remotelog.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, _, err := readAll(t, r, r.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}

// A reader of a repo folder needs only its public files: a copy without
// the key (another user cannot read it; a synced folder may leave it out)
// reads.
func TestReadOnlyRepoNeedsNoKey(t *testing.T) {
	dir, name := publishedRepo(t, 3)
	if err := os.Remove(filepath.Join(dir, "key")); err != nil {
		t.Fatal(err)
	}
	r, err := remotelog.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("open a repo folder without its key: %v", err)
	}
	if r.Name().String() != name || r.Key() != nil {
		t.Errorf("name %s, key %v; want %s and no key", r.Name(), r.Key(), name)
	}
	r.Close()
	if n := readFolder(t, dir); n != 3 {
		t.Errorf("read %d messages, want 3", n)
	}
	if got, err := remotelog.ReadName(dir); err != nil || got.String() != name {
		t.Errorf("ReadName: %v, %v", got, err)
	}
}

// A repo made before the name file: its writer's next open writes it; a
// reader meanwhile uses the key when it can, and says what is missing when
// it cannot.
func TestOldRepoGetsItsNameFile(t *testing.T) {
	dir, name := publishedRepo(t, 2)
	nameFile := filepath.Join(dir, "name")
	if err := os.Remove(nameFile); err != nil {
		t.Fatal(err)
	}
	if n := readFolder(t, dir); n != 2 { // the key is there: derived
		t.Errorf("read %d messages, want 2", n)
	}
	key, err := os.ReadFile(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "key"))
	_, err = remotelog.OpenReadOnly(dir)
	if err == nil || !strings.Contains(err.Error(), "no name file") || !strings.Contains(err.Error(), "read key") {
		t.Fatalf("open without name file and key: %v; want both named", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	repo.Close()
	b, err := os.ReadFile(nameFile)
	if err != nil || strings.TrimSpace(string(b)) != name {
		t.Fatalf("name file after the writer's open: %q, %v; want %s", b, err, name)
	}
	if st, _ := os.Stat(nameFile); st.Mode().Perm() != 0o644 {
		t.Errorf("name file mode %v, want 0644", st.Mode().Perm())
	}
	os.Remove(filepath.Join(dir, "key"))
	if n := readFolder(t, dir); n != 2 {
		t.Errorf("read %d messages, want 2", n)
	}
}

// A name file that disagrees with the key is not believed by the writer.
func TestWriterRefusesAWrongNameFile(t *testing.T) {
	dir, _ := publishedRepo(t, 1)
	other, _ := publishedRepo(t, 1)
	b, _ := os.ReadFile(filepath.Join(other, "name"))
	os.WriteFile(filepath.Join(dir, "name"), b, 0o644)
	if _, err := remotelog.Open(dir); err == nil || !strings.Contains(err.Error(), "the key's name is") {
		t.Fatalf("open with another log's name file: %v", err)
	}
}

const readChildEnv = "RLOG_READ_CHILD"

// readChild reads the log in the repo folder dir and prints how many
// messages it holds.
func readChild(dir string) {
	r, err := remotelog.OpenReadOnly(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	n := 0
	_, _, err = remotelog.CatchUp(context.Background(), r, r.Name(), remotelog.Cursor{}, remotelog.ReadOptions{}, func(remotelog.Message) error {
		n++
		return nil
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("read", n)
}

// Another user reads a repo folder, whose key it may not read. This needs
// root, to run the reader as another user.
func TestAnotherUserReadsARepoFolder(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a reader as another user")
	}
	// Where the other user may enter: the repo and a copy of this test
	// binary, to run as the reader.
	top, err := os.MkdirTemp("", "rlog-folder-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	os.Chmod(top, 0o755)
	dir := filepath.Join(top, "w")
	cfg, _ := remotelog.DefaultConfig("paged")
	if _, err := remotelog.Init(dir, cfg); err != nil {
		t.Fatal(err)
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := repo.Writer(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := w.Append(ctx, repo.DefaultGroup(), [][]byte{body(1), body(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	repo.Close()
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	bin := filepath.Join(top, "reader")
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, self); err != nil {
		t.Fatal(err)
	}
	out.Close()
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), readChildEnv+"="+dir, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	got, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "read 2" {
		t.Fatalf("another user reading the folder: %s (%v)", got, err)
	}
}
