package remotelog_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"rlog/cas"
	"rlog/internal/miniotest"
	"rlog/namesys"
	"rlog/remotelog"
)

// BenchmarkS3BackupIncremental: each op appends 10,000 new messages of
// 256 B to a log on disk, publishes, and backs it up to a bucket of a real
// MinIO server on loopback that holds the log before them. Only the op's
// backup is timed (ns/op). The log starts at base messages and grows by
// 10,000 per op. Each backup is incremental: it reads the log from the
// bucket's head on (read-blocks/op), not the whole log.
func BenchmarkS3BackupIncremental(b *testing.B) {
	for _, base := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprint(base), func(b *testing.B) { benchBackupIncremental(b, base) })
	}
}

func benchBackupIncremental(b *testing.B, base int) {
	const batch = 10_000
	srv := miniotest.Start(b)
	srv.Bucket(b, "bench", false)
	bucket, err := remotelog.OpenS3("s3://bench/log", srv.Config())
	if err != nil {
		b.Fatal(err)
	}
	dir, name := logOnDisk(b, base)
	repo, err := remotelog.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	if _, err := remotelog.BackupS3(ctx, repo, name, bucket, remotelog.S3BackupOptions{}); err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, batch)
	for i := range bodies {
		bodies[i] = make([]byte, 256)
	}
	var uploaded, bytes, blocks float64
	for b.Loop() {
		b.StopTimer()
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := remotelog.BackupS3(ctx, repo, name, bucket, remotelog.S3BackupOptions{})
		if err != nil || !res.RecordWritten || !res.Incremental {
			b.Fatalf("backup: %+v, %v", res, err)
		}
		uploaded += float64(res.Uploaded)
		bytes += float64(res.UploadedBytes)
		blocks += float64(res.Blocks)
	}
	n := float64(b.N)
	b.ReportMetric(uploaded/n, "uploaded-blocks/op")
	b.ReportMetric(bytes/n/(1<<20), "uploaded-MiB/op")
	b.ReportMetric(blocks/n, "read-blocks/op")
}

// BenchmarkS3Restore: restore a log of 256 B messages from a bucket of a
// real MinIO server on loopback into an empty embedded store: every block
// read over S3 and verified, the whole log checked, each block stored as
// it is verified, then the record. The server shares the machine's cores:
// client-cpu-s/op and server-cpu-s/op are the processor time each used
// (the client's is the whole test process's), and msgs/cpu-s the messages
// per second of both together: on 2 idle cores the restore takes at least
// half of their sum.
func BenchmarkS3Restore(b *testing.B) {
	for _, total := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(total), func(b *testing.B) {
			dir, name := logOnDisk(b, total)
			ctx := context.Background()
			src, err := remotelog.OpenSource(ctx, dir)
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			srv := miniotest.Start(b)
			srv.Bucket(b, "bench", false)
			bucket, err := remotelog.OpenS3("s3://bench/log", srv.Config())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := remotelog.BackupS3(ctx, src, name, bucket, remotelog.S3BackupOptions{}); err != nil {
				b.Fatal(err)
			}
			var secs, client, server float64
			for b.Loop() {
				store, err := cas.OpenEmbedded(filepath.Join(b.TempDir(), "blocks"), false)
				if err != nil {
					b.Fatal(err)
				}
				start, c0, s0 := time.Now(), cpuTime(b), srv.CPU()
				res, err := remotelog.RestoreS3(ctx, bucket, name, b.TempDir(), store, namesys.NewDir(b.TempDir(), false), time.Now, nil)
				secs += time.Since(start).Seconds()
				client += (cpuTime(b) - c0).Seconds()
				server += (srv.CPU() - s0).Seconds()
				store.Close()
				if err != nil || res.Messages != uint64(total) {
					b.Fatalf("restore: %d messages, %v", res.Messages, err)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(total)*n/secs, "msgs/s")
			b.ReportMetric(client/n, "client-cpu-s/op")
			b.ReportMetric(server/n, "server-cpu-s/op")
			b.ReportMetric(float64(total)*n/(client+server), "msgs/cpu-s")
		})
	}
}
