package remotelog_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"rlog/cas"
	"rlog/namesys"
	"rlog/remotelog"
)

// BenchmarkBackupRestoreMillion: back a log of 1,000,000 messages of 256 B
// up from a repo on disk to a CAR file, then restore it (every block
// verified, the whole log checked) into an empty embedded store.
func BenchmarkBackupRestoreMillion(b *testing.B) {
	const total = 1_000_000
	dir, name := logOnDisk(b, total)
	ctx := context.Background()
	src, err := remotelog.OpenSource(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var backupSecs, restoreSecs float64
	var size int64
	for b.Loop() {
		car := filepath.Join(b.TempDir(), "log.car")
		f, _ := os.Create(car)
		start := time.Now()
		res, err := remotelog.Backup(ctx, src, name, f, time.Now, nil)
		f.Close()
		if err != nil || res.Messages != total {
			b.Fatalf("backup: %d messages, %v", res.Messages, err)
		}
		backupSecs += time.Since(start).Seconds()
		size = res.Bytes
		store, err := cas.OpenEmbedded(filepath.Join(b.TempDir(), "blocks"), false)
		if err != nil {
			b.Fatal(err)
		}
		f, _ = os.Open(car)
		start = time.Now()
		rres, err := remotelog.Restore(ctx, f, store, namesys.NewDir(b.TempDir(), false), time.Now)
		f.Close()
		store.Close()
		if err != nil || rres.Messages != total {
			b.Fatalf("restore: %d messages, %v", rres.Messages, err)
		}
		restoreSecs += time.Since(start).Seconds()
	}
	n := float64(b.N)
	b.ReportMetric(total*n/backupSecs, "backup-msgs/s")
	b.ReportMetric(total*n/restoreSecs, "restore-msgs/s")
	b.ReportMetric(float64(size)/(1<<20), "car-MiB")
}
