package remotelog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/boxo/ipns"

	"rlog/pager"
	"rlog/remotelog"
)

// benchBodies are n distinct 256-byte bodies.
func benchBodies(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := body(i)
		for len(b) < 256 {
			b = append(b, byte('a'+len(b)%26))
		}
		out[i] = b
	}
	return out
}

// BenchmarkPrivateAppendPublish: 100,000 messages of 256 B appended and
// published in batches of 1,000 to a repo on disk, plain and private (each
// body sealed before it is appended). Reports messages per second, the
// bytes put per message (every publish puts the head page again) and the
// bytes of the published log (every block of its DAG) per message.
func BenchmarkPrivateAppendPublish(b *testing.B) {
	const total, batch = 100_000, 1000
	bodies := benchBodies(total)
	for _, private := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "private"}[private], func(b *testing.B) {
			k := newKeyring(b)
			var stored int
			var logBytes int64
			for b.Loop() {
				b.StopTimer()
				dir, repo, w := newRepoWriter(b, 0)
				ctx := context.Background()
				stored = 0
				b.StartTimer()
				for i := 0; i < total; i += batch {
					in := bodies[i : i+batch]
					if private {
						sealed := make([][]byte, len(in))
						for j, p := range in {
							var err error
							if sealed[j], err = k.Seal(repo.DefaultGroup(), p); err != nil {
								b.Fatal(err)
							}
						}
						in = sealed
					}
					if _, err := w.Append(ctx, repo.DefaultGroup(), in); err != nil {
						b.Fatal(err)
					}
					res, err := w.Publish(ctx, remotelog.PublishOptions{})
					if err != nil {
						b.Fatal(err)
					}
					stored += res.Bytes
				}
				b.StopTimer()
				_, st, err := remotelog.CatchUp(ctx, repo, w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{Whole: true}, func(remotelog.Message) error { return nil })
				if err != nil || st.Messages != total {
					b.Fatalf("read back: %d messages, %v", st.Messages, err)
				}
				logBytes = st.BytesFetched
				w.Close()
				repo.Close()
				os.RemoveAll(filepath.Join(dir, "blocks"))
				b.StartTimer()
			}
			b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(stored)/total, "B-put/msg")
			b.ReportMetric(float64(logBytes)/total, "B-log/msg")
		})
	}
}

// privateLogs are the logs of BenchmarkPrivateCatchUp, built once.
var privateLogs = map[bool]*world{}

// BenchmarkPrivateCatchUp: a reader catches up 10,000 messages of 256 B
// from scratch, from memory (so that the cost of opening bodies shows
// most), plain and private (every body opened), as rlog reads them: a
// private log's bodies opened ahead of delivery on the reader's workers
// (ReadOptions.Prepare = OpenBodies), a plain one's (no keys held) checked
// on delivery by Opening(nil). private-on-delivery opens each body on the
// delivering goroutine (Opening alone). Reports messages per second, the
// processor time per message (the whole process's, on every core, the
// garbage collector's included: on a shared machine the cost, where
// msgs/s also counts waiting for a core) and bytes fetched per message.
func BenchmarkPrivateCatchUp(b *testing.B) {
	const total = 10_000
	k := &remotelog.Keyring{}
	k.Add(remotelog.ReadKey{Epoch: 0, Key: [32]byte{7}})
	for _, mode := range []string{"plain", "private", "private-on-delivery"} {
		private := mode != "plain"
		b.Run(mode, func(b *testing.B) {
			w, ok := privateLogs[private]
			if !ok {
				pol, _ := pager.Preset("paged")
				w = newWorld(b, pol)
				bodies := benchBodies(total)
				if private {
					for i, p := range bodies {
						bodies[i], _ = k.Seal(group, p)
					}
				}
				if _, err := w.w.Append(context.Background(), group, bodies); err != nil {
					b.Fatal(err)
				}
				w.publish(b)
				privateLogs[private] = w
			}
			var kr *remotelog.Keyring
			if private {
				kr = k
			}
			var opts remotelog.ReadOptions
			if mode == "private" {
				opts.Prepare = remotelog.OpenBodies(kr)
			}
			benchCatchUps(b, total, w.w.Name(), kr, opts, func() (remotelog.Source, func()) { return w, func() {} })
		})
	}
}

// benchCatchUps catches up log name, total messages of 256 B, from scratch
// once an iteration, from the source open gives (then closed), with k's
// keys, and reports messages per second, the processor time per message
// and bytes fetched per message.
func benchCatchUps(b *testing.B, total int, name ipns.Name, k *remotelog.Keyring, opts remotelog.ReadOptions, open func() (remotelog.Source, func())) {
	var st remotelog.Stats
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		src, done := open()
		n := 0
		var err error
		_, st, err = remotelog.CatchUp(context.Background(), src, name, remotelog.Cursor{}, opts,
			remotelog.Opening(k, func(m remotelog.Message) error {
				n += len(m.Body)
				return nil
			}))
		done()
		if err != nil || st.Messages != uint64(total) || n != total*256 {
			b.Fatalf("%d messages, %d body bytes, %v", st.Messages, n, err)
		}
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(total*b.N), "cpu-ns/msg")
	b.ReportMetric(float64(st.BytesFetched)/float64(total), "B-fetched/msg")
}

// BenchmarkPrivateGatewayCatchUp: as BenchmarkPrivateCatchUp, the 10,000
// messages of 256 B read from `rlog serve`'s gateway (the package's Server,
// over HTTP on loopback, in the same process), as `rlog fetch URL` reads
// them: a new source each catch-up, from scratch; a private log's bodies
// opened ahead of delivery. The processor time is the server's and the
// reader's.
func BenchmarkPrivateGatewayCatchUp(b *testing.B) {
	const total = 10_000
	for _, mode := range []string{"plain", "private"} {
		private := mode == "private"
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			cfg, _ := remotelog.DefaultConfig("paged")
			repo, w, srv, hs := servedRepoConfig(b, cfg)
			bodies := benchBodies(total)
			var k *remotelog.Keyring
			if private {
				k = newKeyring(b)
				var err error
				if bodies, err = k.SealAll(repo.DefaultGroup(), bodies); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
				b.Fatal(err)
			}
			if _, err := srv.Publish(ctx); err != nil {
				b.Fatal(err)
			}
			opts := remotelog.ReadOptions{Prepare: remotelog.OpenBodies(k)}
			benchCatchUps(b, total, w.Name(), k, opts, func() (remotelog.Source, func()) {
				src, err := remotelog.OpenSource(ctx, hs.URL)
				if err != nil {
					b.Fatal(err)
				}
				return src, func() { src.Close() }
			})
		})
	}
}

// BenchmarkSealOpen: sealing and opening one 256-byte body.
func BenchmarkSealOpen(b *testing.B) {
	k := &remotelog.Keyring{}
	k.Add(remotelog.ReadKey{Epoch: 0, Key: [32]byte{7}})
	plain := make([]byte, 256)
	sealed, _ := k.Seal(group, plain)
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.Seal(group, plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.Open(group, sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
	// As a reader opens a message's body: into a shared buffer.
	b.Run("open-message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m remotelog.Message
			m.GroupID, m.Body = group, sealed
			if err := k.OpenMessage(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func ExampleKeyring() {
	k, _ := remotelog.NewKeyring()
	sealed, _ := k.Seal([]byte("group"), []byte("hello"))
	plain, _ := k.Open([]byte("group"), sealed)
	fmt.Println(string(plain), len(sealed)-len(plain))
	// Output: hello 37
}
