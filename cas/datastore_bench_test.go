package cas_test

import (
	"context"
	"encoding/binary"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"
	leveldb "github.com/ipfs/go-ds-leveldb"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"rlog/cas"
)

// BenchmarkDatastores writes 100,000 blocks of 256 B with PutMany in
// batches of 1,000 through a boxo blockstore on each candidate datastore,
// then reads them all back, and reports blocks/s and disk use. It is how
// the embedded store's datastore (LevelDB) was chosen.
func BenchmarkDatastores(b *testing.B) {
	const n, batch = 100_000, 1000
	rng := rand.New(rand.NewPCG(1, 2))
	blks := make([]blocks.Block, n)
	for i := range blks {
		data := make([]byte, 256) // incompressible, like signed or encrypted bodies
		for j := 0; j < len(data); j += 8 {
			binary.LittleEndian.PutUint64(data[j:], rng.Uint64())
		}
		_, bs, _ := cas.PayloadBlocks(data)
		blks[i] = bs[0]
	}
	open := map[string]func(dir string) (ds.Batching, error){
		"leveldb": func(dir string) (ds.Batching, error) { // as cas.OpenEmbedded opens it
			return leveldb.NewDatastore(dir, &leveldb.Options{NoSync: true, Compression: opt.NoCompression})
		},
		"pebble": func(dir string) (ds.Batching, error) { return pebbleds.NewDatastore(dir) },
		"flatfs": func(dir string) (ds.Batching, error) { return flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), false) },
	}
	for _, name := range []string{"leveldb", "pebble", "flatfs"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var disk int64
			for b.Loop() {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), name)
				d, err := open[name](dir)
				if err != nil {
					b.Fatal(err)
				}
				bs := blockstore.NewBlockstore(d, blockstore.NoPrefix())
				b.StartTimer()
				for i := 0; i < n; i += batch {
					if err := bs.PutMany(ctx, blks[i:i+batch]); err != nil {
						b.Fatal(err)
					}
				}
				for _, blk := range blks {
					if _, err := bs.Get(ctx, blk.Cid()); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				d.Close()
				disk = du(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "blocks/s")
			b.ReportMetric(float64(disk)/(1<<20), "disk-MiB")
		})
	}
}

// du is the disk space a directory tree takes, in allocated blocks.
func du(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				total += allocated(info)
			}
		}
		return nil
	})
	return total
}
