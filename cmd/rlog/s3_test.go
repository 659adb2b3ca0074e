package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"rlog/internal/miniotest"
)

// A damaged bucket: check and restore say so with the exit codes of a
// damaged backup file (4), and of a rollback (3).
func TestS3DamageExitCodes(t *testing.T) {
	srv := miniotest.Start(t)
	srv.Bucket(t, "bkp", false)
	env := map[string]string{}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	rlog := func(repo string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string {
			if k == "RLOG_PATH" {
				return repo
			}
			return env[k]
		})
		return code, out.String(), errb.String()
	}
	w := filepath.Join(t.TempDir(), "w")
	_, name, _ := rlog(w, "init", "--page-entries", "3")
	name = strings.TrimSpace(name)
	rlog(w, "append", "one", "two", "three", "four")
	rlog(w, "publish")
	if code, out, errs := rlog(w, "backup", name, "-o", "s3://bkp/p"); code != exitOK {
		t.Fatalf("backup: exit %d %s%s", code, out, errs)
	}
	ctx := context.Background()
	admin := srv.Client(t)
	oldRecord := get(t, admin, "p/ipns/"+name)
	rlog(w, "append", "five")
	rlog(w, "publish")
	if code, out, errs := rlog(w, "backup", name, "-o", "s3://bkp/p"); code != exitOK {
		t.Fatalf("second backup: exit %d %s%s", code, out, errs)
	}

	// An old record put back: the writer's repo holds the newer one.
	put(t, admin, "p/ipns/"+name, oldRecord)
	if code, out, _ := rlog(w, "check", "s3://bkp/p"); code != exitConflict || !strings.Contains(out, "finding   rollback") {
		t.Errorf("check of a rolled-back bucket: exit %d\n%s", code, out)
	}
	if code, _, errs := rlog(w, "restore", "s3://bkp/p"); code != exitConflict || !strings.Contains(errs, "rolled back") {
		t.Errorf("restore of a rolled-back bucket: exit %d %s", code, errs)
	}
	if code, out, errs := rlog(w, "backup", name, "-o", "s3://bkp/p"); code != exitOK || !strings.Contains(out, "record written") {
		t.Fatalf("backup over the old record: exit %d %s%s", code, out, errs)
	}

	// A flipped byte in a block.
	for o := range admin.ListObjects(ctx, "bkp", minio.ListObjectsOptions{Prefix: "p/ipfs/", Recursive: true}) {
		b := get(t, admin, o.Key)
		b[len(b)/2] ^= 1
		put(t, admin, o.Key, b)
	}
	empty := filepath.Join(t.TempDir(), "e")
	if code, out, _ := rlog(empty, "check", "s3://bkp/p", "--json"); code != exitInvalid || !strings.Contains(out, `"kind": "hash-mismatch"`) {
		t.Errorf("check of a damaged bucket: exit %d\n%s", code, out)
	}
	if code, _, errs := rlog(empty, "restore", "s3://bkp/p"); code != exitInvalid || !strings.Contains(errs, "nothing restored") {
		t.Errorf("restore of a damaged bucket: exit %d %s", code, errs)
	}
	if code, _, errs := rlog(empty, "fetch", name, "--from", "s3://bkp/p"); code != exitInvalid {
		t.Errorf("fetch from a damaged bucket: exit %d %s", code, errs)
	}

	// A backup trusts the bucket's record and does not see the damage;
	// --repair writes every damaged block of the log again.
	if code, out, errs := rlog(w, "backup", name, "-o", "s3://bkp/p"); code != exitOK || !strings.Contains(out, "0 new") {
		t.Fatalf("backup over a damaged bucket: exit %d %s%s", code, out, errs)
	}
	if code, _, _ := rlog(empty, "check", "s3://bkp/p"); code != exitInvalid {
		t.Fatalf("check after a backup without --repair: exit %d", code)
	}
	code, out, errs := rlog(w, "backup", name, "-o", "s3://bkp/p", "--repair", "--json")
	if code != exitOK || !strings.Contains(out, `"repair": true`) || strings.Contains(out, `"uploaded": 0,`) {
		t.Fatalf("backup --repair: exit %d %s%s", code, out, errs)
	}
	if code, out, _ := rlog(empty, "check", "s3://bkp/p"); code != exitOK || !strings.Contains(out, "no findings") {
		t.Fatalf("check after backup --repair: exit %d\n%s", code, out)
	}
	if code, out, errs := rlog(w, "backup", name, "-o", "s3://bkp/p", "--repair"); code != exitOK || !strings.Contains(out, "0 missing or damaged written again") {
		t.Fatalf("backup --repair of a whole bucket: exit %d %s%s", code, out, errs)
	}
}

func get(t *testing.T, c *minio.Client, key string) []byte {
	t.Helper()
	o, err := c.GetObject(context.Background(), "bkp", key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, c *minio.Client, key string, b []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), "bkp", key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}
