package remotelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/cas"
	"rlog/internal/vfs/crashfs"
	"rlog/namesys"
	"rlog/pager"
)

// TestPowerCut cuts the power under a writer that appends in batches,
// publishes and compacts, and now and then collects the repo's garbage:
// at a random operation of its files (journal, page index, state, the
// block store's packs and LevelDB, the record) everything not fsynced is
// lost, but for a random prefix of each file's unsynced writes (torn
// writes). After each cut the repo is reopened on what survived and
// checked as a user would: every acknowledged message is there with its
// bytes, the log checks clean (what `rlog check` runs), a publish
// completes and a reader reads back exactly the local log. After a
// quarter of the cuts one more falls in the reopening itself (the recovery
// of a swap, a torn journal). RLOG_LARGE_TESTS=1 runs 240 cuts under the
// writer; RLOG_POWERCUT_SEED reruns a seed.
func TestPowerCut(t *testing.T) {
	cuts := 24
	if testing.Short() {
		cuts = 6
	}
	if os.Getenv("RLOG_LARGE_TESTS") != "" {
		cuts = 240
	}
	powerCuts(t, cuts)
}

// powerBody is the body of message seq; some go by pointer on their page,
// a few are large messages (stored in the block store when appended).
func powerBody(seq uint64) []byte {
	if seq%401 == 0 {
		return append(fmt.Appendf(nil, "m%d ", seq), bytes.Repeat([]byte{'L'}, LargeMessage)...)
	}
	if seq%17 == 0 {
		return append(fmt.Appendf(nil, "m%d ", seq), bytes.Repeat([]byte{'x'}, 10<<10)...)
	}
	return fmt.Appendf(nil, "m%d", seq)
}

// powerRepo is a repo whose files are all on a crashfs: the writer's, the
// block store and the records.
type powerRepo struct {
	fs *crashfs.FS
	// published: a publish returned (was acknowledged) in this repo.
	published bool
	dir       string
	key       crypto.PrivKey
	names     *namesys.Dir
	pol       pager.Policy
	now       func() time.Time
	store     *cas.Embedded
	w         *Writer
}

func (r *powerRepo) open() error {
	r.names = namesys.NewDirIn(r.fs, filepath.Join(r.dir, "ipns"), false)
	var err error
	if r.store, err = cas.OpenEmbeddedIn(r.fs, filepath.Join(r.dir, "blocks"), false); err != nil {
		return err
	}
	r.w, err = OpenWriter(WriterConfig{Dir: r.dir, Key: r.key, Store: r.store, Publisher: r.names, Resolver: r.names,
		Policy: r.pol, Lifetime: DefaultLifetime, TTL: DefaultTTL, Now: r.now, fs: r.fs})
	if err != nil {
		r.store.Close()
		r.store = nil
	}
	return err
}

// close closes what is open; after a cut its errors are expected.
func (r *powerRepo) close() error {
	var err error
	if r.w != nil {
		err = r.w.Close()
	}
	if r.store != nil {
		err = errors.Join(err, r.store.Close())
	}
	r.w, r.store = nil, nil
	return err
}

// repo is the Repo over the open store and writer, for its garbage
// collection (rlog repo gc).
func (r *powerRepo) repo(cfg Config) *Repo {
	return &Repo{Dir: r.dir, Config: cfg, key: r.key, name: r.w.Name(), store: r.store, names: r.names}
}

// Get and Resolve make the repo a reader's source.
func (r *powerRepo) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return r.store.Get(ctx, c) }
func (r *powerRepo) Resolve(ctx context.Context, n ipns.Name) ([]byte, error) {
	return r.names.Resolve(ctx, n)
}

func powerCuts(t *testing.T, cuts int) {
	seed := rand.Uint64()
	if s, err := strconv.ParseUint(os.Getenv("RLOG_POWERCUT_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (RLOG_POWERCUT_SEED reruns it)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	var s [32]byte
	for i := range s {
		s[i] = byte(rng.Uint32())
	}
	key, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8(s))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := DefaultConfig("paged")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Policy.PageEntries = 16 // pages seal often
	cfg.Policy.Window = 3
	t0 := time.Now()
	base := t.TempDir()
	// fresh is a new repo: what Init makes, durable.
	fresh := func(k int) *powerRepo {
		r := &powerRepo{fs: crashfs.New(), dir: filepath.Join(base, strconv.Itoa(k)), key: key, pol: cfg.Policy, now: func() time.Time { return t0 }}
		for _, d := range []string{"log", "ipns"} {
			if err := r.fs.MkdirAll(filepath.Join(r.dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		r.fs.SyncAll()
		return r
	}
	ctx := context.Background()

	var r *powerRepo
	var acked uint64       // the last message acknowledged
	var ends []uint64      // where each append attempted would end the log
	var inOpen, rounds int // cuts while reopening; rounds of the writer
	partial := 0           // reboots that kept part of an unacknowledged append
	cutIn := map[string]int{}
	for k := range cuts {
		// Every 8th cut falls early in a new repo: its first appends,
		// publish and compaction.
		cutMax := int64(600)
		if k%8 == 0 {
			r, acked, ends, cutMax = fresh(k), 0, []uint64{0}, 80
		} else if rng.IntN(4) == 0 {
			inOpen++
			r.fs.CutAfter(1 + rng.Int64N(40))
			if err := r.open(); err == nil {
				r.close() // the cut fell after the opening
				r.fs.Cut()
			} else if !r.fs.IsCut() {
				t.Fatalf("cut %d: opening failed before the cut: %v", k, err)
			}
			r.fs = r.fs.Reboot(rng)
		}
		if err := r.open(); err != nil {
			t.Fatalf("cut %d: the repo does not open after a power cut: %v", k, err)
		}
		if !slices.Contains(ends, r.w.Len()) {
			partial++ // the part of a batch a torn write kept (see the doc)
		}
		checkAfterPowerCut(t, ctx, r, k, acked)
		ends = []uint64{r.w.Len()}
		// The power fails at a random operation of the writer.
		r.fs.CutAfter(1 + rng.Int64N(cutMax))
		for round := 0; ; round++ {
			rounds++
			n := r.w.Len()
			bodies := make([][]byte, 1+rng.IntN(40))
			for i := range bodies {
				bodies[i] = powerBody(n + uint64(i) + 1)
			}
			ends = append(ends, n+uint64(len(bodies)))
			phase := "append"
			got, err := r.w.Append(ctx, cfg.DefaultGroup(), bodies)
			if err == nil {
				acked = got[len(got)-1].Seq
				if round%3 == 2 {
					phase = "publish"
					if _, err = r.w.Publish(ctx, PublishOptions{}); err == nil {
						r.published = true
					}
				}
				if err == nil && round%7 == 6 {
					phase = "gc"
					_, err = r.repo(cfg).GC(ctx, r.w)
				}
			}
			if err != nil {
				cutIn[phase]++
				if !r.fs.IsCut() {
					t.Fatalf("cut %d: the writer failed before the cut: %v", k, err)
				}
				// The writer stays usable: what it is asked fails, and
				// nothing panics (a compaction cut short may have
				// closed its journal).
				if _, err := r.w.Append(ctx, cfg.DefaultGroup(), [][]byte{[]byte("after")}); err == nil {
					t.Fatalf("cut %d: an append after the cut (in %s) was acknowledged", k, phase)
				}
				break
			}
		}
		r.close()
		r.fs = r.fs.Reboot(rng)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "blocks")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the block store is on the real file system, not the one the power is cut under (%v)", err)
	}
	t.Logf("%d power cuts under the writer (%d in an append, %d in a publish or its compaction, %d in a repo gc) and %d more while reopening; %d rounds, %d messages acknowledged in the last repo; %d reboots kept part of an append not acknowledged",
		cuts, cutIn["append"], cutIn["publish"], cutIn["gc"], inOpen, rounds, acked, partial)
}

// checkAfterPowerCut checks the repo reopened after cut k.
func checkAfterPowerCut(t *testing.T, ctx context.Context, r *powerRepo, k int, acked uint64) {
	t.Helper()
	w := r.w
	if w.Len() < acked {
		t.Fatalf("cut %d: lost acknowledged messages: the log has %d, %d were acknowledged", k, w.Len(), acked)
	}
	seq := uint64(0)
	err := w.Scan(1, w.Len(), func(m Message) error {
		seq++
		return samePowerMessage(ctx, w, seq, m)
	})
	if err != nil || seq != w.Len() {
		t.Fatalf("cut %d: local log: read %d of %d: %v", k, seq, w.Len(), err)
	}
	if w.Len() == 0 {
		return // nothing appended survived: nothing to publish
	}
	// The record a returned publish made, or a newer one, must be there;
	// a first publish cut short may have saved its state and no record.
	if rep := Check(ctx, r, w.Name(), cid.Undef, r.now); !rep.OK() && r.published {
		t.Fatalf("cut %d: check after a power cut: %v", k, rep.Findings)
	}
	res, err := w.Publish(ctx, PublishOptions{})
	if err != nil {
		t.Fatalf("cut %d: publish after a power cut: %v", k, err)
	}
	if res.Messages != w.Len() {
		t.Fatalf("cut %d: publish after a power cut covers %d of %d", k, res.Messages, w.Len())
	}
	r.published = true
	seq = 0
	_, _, err = CatchUp(ctx, r, w.Name(), Cursor{}, ReadOptions{Now: r.now}, func(m Message) error {
		seq++
		return samePowerMessage(ctx, w, seq, m)
	})
	if err != nil || seq != w.Len() {
		t.Fatalf("cut %d: a reader read back %d of %d: %v", k, seq, w.Len(), err)
	}
	if rep := Check(ctx, r, w.Name(), cid.Undef, r.now); !rep.OK() {
		t.Fatalf("cut %d: check after the publish: %v", k, rep.Findings)
	}
}

// samePowerMessage checks that m is message seq, whole: a large one's
// body is read from the file a reader delivers it in, or from the store.
func samePowerMessage(ctx context.Context, w *Writer, seq uint64, m Message) error {
	body := m.Body
	switch {
	case m.BodyFile != "":
		b, err := os.ReadFile(m.BodyFile)
		if err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
		body = b
	case m.IsLarge():
		rc, err := w.OpenBody(ctx, m)
		if err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
		body, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
	}
	if m.Seq != seq || !bytes.Equal(body, powerBody(seq)) {
		return fmt.Errorf("message %d: got seq %d %.20q", seq, m.Seq, body)
	}
	return nil
}
