package cas_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"
	leveldb "github.com/ipfs/go-ds-leveldb"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"rlog/cas"
	"rlog/mvds"
	"rlog/pager"
)

// BenchmarkPageStores stores the sealed pages of a log of N messages of
// 255-byte bodies (RLOG_PAGESTORE_N, default 1,000,000; 256 a page, as the
// paged preset seals them) in each candidate datastore, as a publish does
// (PutMany in batches of 4 MiB, then one sync), then reads every page back in
// a random order, and reports the disk the store takes against the bodies
// (x-bodies), the bytes the process wrote to the disk against the bytes put
// (write-amp, from /proc/self/io, the store's compactions included) and the
// read rate. Bodies are "text" (the lines bench/million.sh appends: a number
// and padding, very compressible) or "random" (incompressible, as signed or
// encrypted bodies are). It is how the embedded store was chosen
// (docs/STORAGE.md). Run it alone: go test -run X -bench PageStores
// -benchtime 1x ./cas
func BenchmarkPageStores(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("RLOG_PAGESTORE_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	open := map[string]func(dir string) (ds.Batching, error){
		"leveldb": func(dir string) (ds.Batching, error) { // the embedded store before
			return leveldb.NewDatastore(dir, &leveldb.Options{NoSync: true, Compression: opt.NoCompression, BlockCacheCapacity: 2 << 20})
		},
		"leveldb-snappy": func(dir string) (ds.Batching, error) {
			return leveldb.NewDatastore(dir, &leveldb.Options{NoSync: true, Compression: opt.SnappyCompression, BlockCacheCapacity: 2 << 20})
		},
		"leveldb-snappy-wide": func(dir string) (ds.Batching, error) { // fewer, wider levels
			return leveldb.NewDatastore(dir, &leveldb.Options{NoSync: true, Compression: opt.SnappyCompression, BlockCacheCapacity: 2 << 20,
				CompactionTableSize: 8 << 20, CompactionTotalSize: 64 << 20})
		},
		"leveldb-snappy-l0": func(dir string) (ds.Batching, error) { // level 0 merged 16 tables at a time
			return leveldb.NewDatastore(dir, &leveldb.Options{NoSync: true, Compression: opt.SnappyCompression, BlockCacheCapacity: 2 << 20,
				CompactionL0Trigger: 16, WriteL0SlowdownTrigger: 24, WriteL0PauseTrigger: 36})
		},
		"pebble": func(dir string) (ds.Batching, error) { return pebbleds.NewDatastore(dir) },
		"flatfs": func(dir string) (ds.Batching, error) { return flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), false) },
	}
	for _, bodies := range []string{"text", "random"} {
		pages := sealedPages(b, n, bodies == "random")
		var put int64
		for _, p := range pages {
			put += int64(len(p.RawData()))
		}
		for _, name := range []string{"leveldb", "leveldb-snappy", "leveldb-snappy-wide", "leveldb-snappy-l0", "pebble", "flatfs"} {
			b.Run(bodies+"/"+name, func(b *testing.B) {
				ctx := context.Background()
				var disk, written int64
				var read time.Duration
				for b.Loop() {
					dir := filepath.Join(b.TempDir(), name)
					d, err := open[name](dir)
					if err != nil {
						b.Fatal(err)
					}
					bs := blockstore.NewBlockstore(d, blockstore.NoPrefix())
					w0 := writeBytes(b)
					for i := 0; i < len(pages); {
						j, size := i, 0
						for ; j < len(pages) && size < cas.PutBatch; j++ {
							size += len(pages[j].RawData())
						}
						if err := bs.PutMany(ctx, pages[i:j]); err != nil {
							b.Fatal(err)
						}
						i = j
					}
					if err := d.Sync(ctx, ds.NewKey("/")); err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					for _, k := range rand.Perm(len(pages)) {
						if _, err := bs.Get(ctx, pages[k].Cid()); err != nil {
							b.Fatal(err)
						}
					}
					read = time.Since(start)
					if err := d.Close(); err != nil {
						b.Fatal(err)
					}
					syncFS(b, dir)
					written = writeBytes(b) - w0
					disk = du(dir)
				}
				b.ReportMetric(float64(disk)/float64(n*255), "x-bodies")
				b.ReportMetric(float64(disk)/(1<<20), "disk-MiB")
				b.ReportMetric(float64(written)/float64(put), "write-amp")
				b.ReportMetric(float64(put)/(1<<20)/read.Seconds(), "read-MiB/s")
			})
		}
	}
}

// sealedPages are the sealed v2 pages of n messages with 255-byte bodies.
func sealedPages(b *testing.B, n int, random bool) []blocks.Block {
	rng := rand.New(rand.NewPCG(1, 2))
	group := make([]byte, 32)
	for i := range group {
		group[i] = byte(rng.Uint32())
	}
	pad := strings.Repeat("x", 255)
	var out []blocks.Block
	for p := 0; p*256 < n; p++ {
		pg := &pager.Page{Version: pager.Version, Number: uint64(p), Start: uint64(p*256 + 1)}
		for i := p * 256; i < min(n, (p+1)*256); i++ {
			body := []byte(fmt.Sprintf("%d ", i+1) + pad)[:255]
			if random {
				for j := range body {
					body[j] = byte(rng.Uint32())
				}
			}
			m := mvds.Message{GroupID: group, Timestamp: 1_780_000_000 + int64(i/125_000), Body: body}
			pg.Entries = append(pg.Entries, pager.Entry{Payload: m.Marshal()})
		}
		raw, c, err := pager.Encode(pg)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, cas.NewBlock(c, raw))
	}
	return out
}

// writeBytes is what this process has had written to the disk so far.
func writeBytes(b *testing.B) int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io: write amplification is measured on Linux")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Skip("no write_bytes in /proc/self/io")
	return 0
}

// syncFS writes back what the store left in the page cache, so that its
// bytes are counted.
func syncFS(b *testing.B, dir string) {
	filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if f, err := os.Open(path); err == nil {
				f.Sync()
				f.Close()
			}
		}
		return nil
	})
}
