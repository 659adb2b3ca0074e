package remotelog_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/minio/minio-go/v7"

	"rlog/cas"
	"rlog/internal/miniotest"
	"rlog/namesys"
	"rlog/remotelog"
)

// s3World is a log in memory and a bucket of a real MinIO server.
type s3World struct {
	*world
	srv    *miniotest.Server
	bucket *remotelog.S3Bucket
}

func newS3World(t *testing.T) *s3World {
	t.Helper()
	srv := miniotest.Start(t)
	srv.Bucket(t, "logs", true)
	b, err := remotelog.OpenS3("s3://logs/team/a", srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	return &s3World{world: newWorld(t, small(t)), srv: srv, bucket: b}
}

// backup backs the log up and counts the blocks written, each once.
func (s *s3World) backup(t *testing.T) (remotelog.S3BackupResult, []cid.Cid) {
	t.Helper()
	var written []cid.Cid
	res, err := remotelog.BackupS3(context.Background(), s.world, s.w.Name(), s.bucket, remotelog.S3BackupOptions{
		Now: s.clock.Now, Uploaded: func(c cid.Cid) { written = append(written, c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != len(written) {
		t.Fatalf("backup reports %d blocks uploaded, %d were", res.Uploaded, len(written))
	}
	return res, written
}

func (s *s3World) held(t *testing.T) map[cid.Cid]struct{} {
	t.Helper()
	h, err := s.bucket.Blocks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// wantMessages reads the whole log from src and checks every message.
func wantMessages(t *testing.T, src remotelog.Source, w *world, n int) {
	t.Helper()
	got, _, err := readAll(t, src, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: w.clock.Now})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != n {
		t.Fatalf("read %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if !bytes.Equal(m.Body, body(i)) {
			t.Fatalf("message %d: %q, want %q", i+1, m.Body, body(i))
		}
	}
}

func TestS3BackupIncrementalRestoreCheck(t *testing.T) {
	s := newS3World(t)
	ctx := context.Background()
	s.appendN(t, 0, 40, 0)
	s.publish(t)

	res, written := s.backup(t)
	if res.Messages != 40 || res.Uploaded != res.Blocks || !res.RecordWritten || res.RecordSeq != 1 || res.Incremental {
		t.Fatalf("first backup: %+v", res)
	}
	first := s.held(t)
	if len(first) != res.Blocks || len(written) != res.Blocks {
		t.Fatalf("the bucket holds %d blocks, the log has %d", len(first), res.Blocks)
	}

	// The second backup writes only the blocks the bucket lacks.
	s.appendN(t, 40, 25, 0)
	s.publish(t)
	res2, written2 := s.backup(t)
	second := s.held(t)
	var fresh []cid.Cid
	for c := range second {
		if _, ok := first[c]; !ok {
			fresh = append(fresh, c)
		}
	}
	slices.SortFunc(fresh, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	slices.SortFunc(written2, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	if res2.Messages != 65 || !slices.Equal(fresh, written2) || res2.Uploaded == 0 || res2.Uploaded > res2.Blocks || !res2.Incremental {
		t.Fatalf("second backup: %+v; uploaded %d, new in the bucket %d", res2, len(written2), len(fresh))
	}
	// Nothing new: nothing written, not even the record.
	res3, written3 := s.backup(t)
	if len(written3) != 0 || res3.RecordWritten || !maps.Equal(second, s.held(t)) {
		t.Fatalf("third backup of the same log: %+v", res3)
	}

	// Check, restore into an empty store, read from the bucket.
	rep := remotelog.Check(ctx, s.bucket, s.w.Name(), cid.Undef, s.clock.Now)
	if !rep.OK() || rep.Messages != 65 || rep.RecordSeq != 2 {
		t.Fatalf("check: %+v", rep)
	}
	store, names := cas.NewMemory(), namesys.NewMemory()
	rres, err := remotelog.RestoreS3(ctx, s.bucket, s.w.Name(), t.TempDir(), store, names, s.clock.Now, nil)
	if err != nil || rres.Messages != 65 || !rres.RecordSaved || rres.Blocks != rep.Blocks {
		t.Fatalf("restore: %+v, %v", rres, err)
	}
	wantMessages(t, sourceOf{store, names}, s.world, 65)
	wantMessages(t, s.bucket, s.world, 65)

	// Opened by URL, as --from s3://… does.
	t.Setenv("AWS_ENDPOINT_URL", s.srv.Endpoint())
	t.Setenv("AWS_ACCESS_KEY_ID", s.srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.srv.SecretKey)
	src, err := remotelog.OpenSource(ctx, "s3://logs/team/a")
	if err != nil {
		t.Fatal(err)
	}
	wantMessages(t, src, s.world, 65)

	// A public bucket read over plain HTTP is a gateway.
	gw := remotelog.GatewaySourceWith(s.srv.Endpoint()+"/logs/team/a", http.DefaultClient)
	wantMessages(t, gw, s.world, 65)
	head := func(path string) http.Header {
		resp, err := http.Get(s.srv.Endpoint() + "/logs/team/a/" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return resp.Header
	}
	if h := head("ipfs/" + written[0].String()); h.Get("Content-Type") != cas.RawBlockType || h.Get("Cache-Control") != cas.ImmutableCaching {
		t.Fatalf("a block's headers: %v", h)
	}
	if h := head("ipns/" + s.w.Name().String()); h.Get("Content-Type") != remotelog.RecordType || h.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("the record's headers: %v", h)
	}
}

type sourceOf struct {
	cas.Getter
	namesys.Resolver
}

func TestS3BackupKilledMidway(t *testing.T) {
	s := newS3World(t)
	ctx := context.Background()
	s.appendN(t, 0, 10, 0)
	s.publish(t)
	before, _ := s.backup(t)

	s.appendN(t, 10, 60, 0)
	s.publish(t)
	var n atomic.Int32
	_, err := remotelog.BackupS3(ctx, s.world, s.w.Name(), s.bucket, remotelog.S3BackupOptions{
		Now: s.clock.Now,
		Uploaded: func(cid.Cid) {
			if n.Add(1) == 3 {
				s.srv.Kill()
			}
		},
	})
	if err == nil {
		t.Fatal("a backup to a server killed in its middle succeeded")
	}
	t.Logf("the interrupted backup: %v", err)
	s.srv.Restart(t)

	// The bucket reads as the previous complete backup.
	rep := remotelog.Check(ctx, s.bucket, s.w.Name(), cid.Undef, s.clock.Now)
	if !rep.OK() || rep.Messages != 10 || rep.RecordSeq != before.RecordSeq || rep.Head != before.Head.String() {
		t.Fatalf("check after the interrupted backup: %+v", rep)
	}
	partial := s.held(t)
	if len(partial) != before.Blocks+3 {
		t.Fatalf("the bucket holds %d blocks, want the %d of the first backup and the 3 written before the kill", len(partial), before.Blocks)
	}
	// The next run writes the rest, and only the rest, and completes.
	res, written := s.backup(t)
	if !res.RecordWritten || res.Messages != 70 || len(written) == 0 {
		t.Fatalf("the next backup: %+v, %d written", res, len(written))
	}
	for _, c := range written {
		if _, ok := partial[c]; ok {
			t.Fatalf("the next backup wrote %s again", c)
		}
	}
	if got := len(s.held(t)); got != len(partial)+len(written) {
		t.Fatalf("the bucket holds %d blocks, want %d", got, len(partial)+len(written))
	}
	if rep := remotelog.Check(ctx, s.bucket, s.w.Name(), cid.Undef, s.clock.Now); !rep.OK() || rep.Messages != 70 {
		t.Fatalf("check after the next backup: %+v", rep)
	}
}

func TestS3DamageFoundAndRefused(t *testing.T) {
	s := newS3World(t)
	ctx := context.Background()
	admin := s.srv.Client(t)
	s.appendN(t, 0, 20, 0)
	s.publish(t)
	s.backup(t)
	oldRecord, err := s.bucket.Resolve(ctx, s.w.Name())
	if err != nil {
		t.Fatal(err)
	}
	s.appendN(t, 20, 20, 0)
	s.publish(t)
	_, written := s.backup(t)
	// The reader that read the whole log holds its cursor and record.
	_, cur, err := readAll(t, s.bucket, s.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	newest, err := namesys.Resolve(ctx, s.bucket, s.w.Name(), s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, b []byte) {
		t.Helper()
		if _, err := admin.PutObject(ctx, "logs", "team/a/"+key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	victim := written[len(written)/2]
	good, err := s.bucket.Get(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, kind string
		damage     func()
		want       error
	}{
		{"flipped byte", "hash-mismatch", func() {
			bad := bytes.Clone(good)
			bad[len(bad)/2] ^= 1
			put("ipfs/"+victim.String(), bad)
		}, cas.ErrHashMismatch},
		{"missing block", "missing-block", func() {
			if err := admin.RemoveObject(ctx, "logs", "team/a/ipfs/"+victim.String(), minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}, cas.ErrNotFound},
		{"old record put back", "rollback", func() {
			put("ipns/"+s.w.Name().String(), oldRecord)
		}, remotelog.ErrRollback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.damage()
			defer func() { // repair for the next case
				put("ipfs/"+victim.String(), good)
				put("ipns/"+s.w.Name().String(), newest.Raw)
			}()
			rep := remotelog.CheckHeld(ctx, s.bucket, s.w.Name(), newest, s.clock.Now)
			if rep.OK() || rep.Findings[0].Kind != tc.kind {
				t.Fatalf("check: %+v", rep)
			}
			// Restore into a repo that has seen the newest record, and into
			// an empty one: nothing stored.
			for _, seen := range []bool{true, false} {
				store, names := cas.NewMemory(), namesys.NewMemory()
				if seen {
					names.Publish(ctx, s.w.Name(), newest.Raw)
				}
				_, err := remotelog.RestoreS3(ctx, s.bucket, s.w.Name(), t.TempDir(), store, names, s.clock.Now, nil)
				if tc.kind == "rollback" && !seen {
					// An old record alone is a valid, complete, older log.
					if err != nil {
						t.Fatalf("restore of the older log: %v", err)
					}
					continue
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("restore (record seen %v): %v, want %v", seen, err, tc.want)
				}
				if n := store.Len(); n != 0 {
					t.Fatalf("a refused restore stored %d blocks", n)
				}
			}
			// fetch: a reader at its cursor refuses it.
			_, _, err := readAll(t, s.bucket, s.w.Name(), cur, remotelog.ReadOptions{Now: s.clock.Now})
			if tc.kind != "rollback" {
				_, _, err = readAll(t, s.bucket, s.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Now: s.clock.Now})
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("fetch: %v, want %v", err, tc.want)
			}
		})
	}
	if rep := remotelog.Check(ctx, s.bucket, s.w.Name(), cid.Undef, s.clock.Now); !rep.OK() || rep.Messages != 40 {
		t.Fatalf("check after repair: %+v", rep)
	}
	// The next backup replaces an old record put back, or a damaged one.
	for _, bad := range [][]byte{oldRecord, []byte("not a record")} {
		put("ipns/"+s.w.Name().String(), bad)
		if res, _ := s.backup(t); !res.RecordWritten {
			t.Fatalf("backup over a bad record: %+v", res)
		}
		if rep := remotelog.Check(ctx, s.bucket, s.w.Name(), cid.Undef, s.clock.Now); !rep.OK() || rep.RecordSeq != newest.Sequence {
			t.Fatalf("check after the backup over a bad record: %+v", rep)
		}
	}
}
