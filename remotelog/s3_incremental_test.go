package remotelog_test

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/minio/minio-go/v7"

	"rlog/internal/miniotest"
	"rlog/pager"
	"rlog/remotelog"
)

// requestLog is a transport that notes every request a client sends.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD path?query"
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// take returns the requests noted since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reqs
	l.reqs = nil
	return r
}

// listBlocks lists the blocks under the bucket's prefix with a client of
// its own, so the backup's requests are not counted.
func listBlocks(t *testing.T, srv *miniotest.Server, bucket, prefix string) map[cid.Cid]struct{} {
	t.Helper()
	held := map[cid.Cid]struct{}{}
	for o := range srv.Client(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix + "/ipfs/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		c, err := cid.Decode(strings.TrimPrefix(o.Key, prefix+"/ipfs/"))
		if err != nil {
			t.Fatalf("object %s: %v", o.Key, err)
		}
		held[c] = struct{}{}
	}
	return held
}

// TestS3BackupIncrementalReadsOnlyNew: once the bucket holds a backup, the
// next one reads the bucket's record and nothing else of the bucket (no
// listing, no HEAD, no old block asked for), writes exactly the blocks the
// bucket lacks, and leaves a bucket that checks whole: across pages sealed
// and index nodes rewritten between backups, tail pieces, and payloads
// inline in the head that become pointers when their page is sealed.
func TestS3BackupIncrementalReadsOnlyNew(t *testing.T) {
	srv := miniotest.Start(t)
	srv.Bucket(t, "logs", false)
	var reqs requestLog
	cfg := srv.Config()
	cfg.Transport = &reqs
	bucket, err := remotelog.OpenS3("s3://logs/inc", cfg)
	if err != nil {
		t.Fatal(err)
	}
	pol := small(t)
	pol.PageEntries, pol.TailEntries, pol.InlineLimit, pol.HeadInlineLimit = 4, 2, 64, 4<<10
	w := newWorld(t, pol)
	ctx := context.Background()
	// 1,024 pages to an index node: 4,100 messages of 4 a page make 2.
	w.appendN(t, 0, 4100, 0)
	w.publish(t)
	backup := func(count bool) (remotelog.S3BackupResult, []cid.Cid) {
		t.Helper()
		var written []cid.Cid
		opts := remotelog.S3BackupOptions{Now: w.clock.Now}
		if count { // one block at a time
			opts.Uploaded = func(c cid.Cid) { written = append(written, c) }
		}
		res, err := remotelog.BackupS3(ctx, w, w.w.Name(), bucket, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res, written
	}
	if res, _ := backup(false); res.Incremental || res.Messages != 4100 {
		t.Fatalf("first backup: %+v", res)
	}
	reqs.take()
	n := 4100
	// New messages: none, within the head's page, across one or many
	// pages, payloads big enough to be pointers once sealed (100 B).
	for i, add := range []struct{ n, size int }{{0, 0}, {1, 0}, {1, 100}, {2, 100}, {3, 0}, {37, 100}, {4, 0}, {600, 0}} {
		if add.n > 0 {
			w.appendN(t, n, add.n, add.size)
			n += add.n
			w.publish(t)
		}
		before := listBlocks(t, srv, "logs", "inc")
		reqs.take()
		res, written := backup(true)
		sent := reqs.take()
		after := listBlocks(t, srv, "logs", "inc")
		if !res.Incremental || res.Messages != uint64(n) || res.Uploaded != len(written) {
			t.Fatalf("backup %d: %+v", i, res)
		}
		var fresh []cid.Cid
		for c := range after {
			if _, ok := before[c]; !ok {
				fresh = append(fresh, c)
			}
		}
		sortCids(fresh)
		sortCids(written)
		if !slices.Equal(fresh, written) {
			t.Fatalf("backup %d: wrote %d blocks, the bucket has %d new", i, len(written), len(fresh))
		}
		// Requests: the record read (and written back and read again
		// when new), and a conditional PUT per block read from the old
		// head's page on: each written, or one of the old page's few.
		puts, again, gets := 0, 0, 0
		for _, r := range sent {
			method, path, _ := strings.Cut(r, " ")
			key, _, _ := strings.Cut(strings.TrimPrefix(path, "/logs/inc/"), "?")
			c, cerr := cid.Decode(strings.TrimPrefix(key, "ipfs/"))
			_, old := before[c]
			switch {
			case strings.HasPrefix(key, "ipns/") && (method == http.MethodGet || method == http.MethodPut):
			case strings.HasPrefix(key, "ipfs/") && cerr == nil && method == http.MethodPut:
				puts++
				if old {
					again++
				}
			case strings.HasPrefix(key, "ipfs/") && cerr == nil && method == http.MethodGet && old:
				gets++ // the old head, or its last index node, gone from the local store
			default:
				t.Fatalf("backup %d: sent %s, which is neither the record nor a new block", i, r)
			}
		}
		if gets > 2 {
			t.Fatalf("backup %d: read %d old blocks from the bucket: %q", i, gets, sent[:min(len(sent), 10)])
		}
		// The head's page of 4 entries is at most 2 tail pieces, the page
		// before it (read for its last message), and a pointer payload per entry.
		if puts != len(written)+again || again > 2+1+4 {
			t.Fatalf("backup %d: %d PUTs of blocks, %d written, %d of blocks already there: %q", i, puts, len(written), again, sent[:min(len(sent), 20)])
		}
		// The bucket holds every block of the log (read locally).
		blocksOf := &recording{world: w}
		if rep := remotelog.Check(ctx, blocksOf, w.w.Name(), cid.Undef, w.clock.Now); !rep.OK() {
			t.Fatalf("check of the local log: %+v", rep)
		}
		for _, c := range blocksOf.cids {
			if _, ok := after[c]; !ok {
				t.Fatalf("backup %d: the bucket lacks block %s of the log", i, c)
			}
		}
		t.Logf("backup %d of %d new messages: %d requests, %d blocks written, %d PUTs of blocks already there", i, add.n, len(sent), len(written), again)
	}
	// Every block of the log is in the bucket, and each is right.
	if rep := remotelog.Check(ctx, bucket, w.w.Name(), cid.Undef, w.clock.Now); !rep.OK() || rep.Messages != uint64(n) {
		t.Fatalf("check after the backups: %+v", rep)
	}
}

func sortCids(cs []cid.Cid) {
	slices.SortFunc(cs, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
}

// TestS3BackupRepair: a backup trusts the bucket's record and does not see
// a block damaged or removed behind its back; check finds both, and a
// backup with Repair writes exactly those two again from the verified
// local blocks, after which the bucket checks whole.
func TestS3BackupRepair(t *testing.T) {
	s := newS3World(t)
	ctx := context.Background()
	admin := s.srv.Client(t)
	s.appendN(t, 0, 30, 0)
	s.publish(t)
	first, _ := s.backup(t)
	// Two sealed pages, which every later log holds too.
	hb, err := s.store.Get(ctx, first.Head)
	if err != nil {
		t.Fatal(err)
	}
	head, err := pager.Decode(hb)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	window := head.Window // v1, v2: in the head; v3: in its window node
	if head.Node.Defined() {
		nb, err := s.store.Get(ctx, head.Node)
		if err != nil {
			t.Fatal(err)
		}
		wn, err := pager.DecodeWindowNode(nb)
		if err != nil {
			t.Fatal(err)
		}
		window = wn.Window
	}
	if len(window) < 2 {
		t.Fatalf("head: %+v, window %v", head, window)
	}
	flipped, removed := window[0].Cid, window[1].Cid
	good, err := s.bucket.Get(ctx, flipped)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	if _, err := admin.PutObject(ctx, "logs", "team/a/ipfs/"+flipped.String(), bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.RemoveObject(ctx, "logs", "team/a/ipfs/"+removed.String(), minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	s.appendN(t, 30, 5, 0)
	s.publish(t)
	if res, w := s.backup(t); !res.Incremental || slices.Contains(w, flipped) || slices.Contains(w, removed) {
		t.Fatalf("the incremental backup: %+v, wrote %v", res, w)
	}
	rep := remotelog.Check(ctx, s.bucket, s.w.Name(), cid.Undef, s.clock.Now)
	kinds := map[string]bool{}
	for _, f := range rep.Findings {
		kinds[f.Kind] = true
	}
	if rep.OK() || !kinds["hash-mismatch"] && !kinds["missing-block"] {
		t.Fatalf("check of the damaged bucket: %+v", rep)
	}
	var repaired []cid.Cid
	res, err := remotelog.BackupS3(ctx, s.world, s.w.Name(), s.bucket, remotelog.S3BackupOptions{
		Now: s.clock.Now, Repair: true, Uploaded: func(c cid.Cid) { repaired = append(repaired, c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	sortCids(repaired)
	want := []cid.Cid{flipped, removed}
	sortCids(want)
	if res.Incremental || res.Uploaded != 2 || !slices.Equal(repaired, want) || res.RecordWritten {
		t.Fatalf("repair: %+v, wrote %v, want %v", res, repaired, want)
	}
	if rep := remotelog.Check(ctx, s.bucket, s.w.Name(), cid.Undef, s.clock.Now); !rep.OK() || rep.Messages != 35 {
		t.Fatalf("check after the repair: %+v", rep)
	}
	if got, err := s.bucket.Get(ctx, flipped); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("the flipped block after the repair: %v", err)
	}
	// A repair of a whole bucket writes nothing.
	before := s.held(t)
	res, err = remotelog.BackupS3(ctx, s.world, s.w.Name(), s.bucket, remotelog.S3BackupOptions{Now: s.clock.Now, Repair: true})
	if err != nil || res.Uploaded != 0 || !maps.Equal(before, s.held(t)) {
		t.Fatalf("repair of a whole bucket: %+v, %v", res, err)
	}
}

// TestS3BackupFullWhenTheOldHeadIsGone: when the head of the bucket's
// record can be read neither from the source nor from the bucket, what the
// bucket holds is unknown: the backup lists it and reads the whole log.
func TestS3BackupFullWhenTheOldHeadIsGone(t *testing.T) {
	s := newS3World(t)
	ctx := context.Background()
	s.appendN(t, 0, 25, 0)
	s.publish(t)
	first, _ := s.backup(t)
	s.appendN(t, 25, 5, 0)
	s.publish(t)
	if err := s.srv.Client(t).RemoveObject(ctx, "logs", "team/a/ipfs/"+first.Head.String(), minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Delete(ctx, first.Head); err != nil {
		t.Fatal(err)
	}
	res, _ := s.backup(t)
	if res.Incremental || !res.RecordWritten || res.Messages != 30 {
		t.Fatalf("backup: %+v", res)
	}
	if rep := remotelog.Check(ctx, s.bucket, s.w.Name(), cid.Undef, s.clock.Now); !rep.OK() || rep.Messages != 30 {
		t.Fatalf("check: %+v", rep)
	}
}
