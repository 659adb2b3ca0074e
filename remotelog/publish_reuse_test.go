package remotelog_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/pager"
	"rlog/remotelog"
)

// TestPublishKeepsEveryPayload: a publish into the embedded store reads
// the journal through one reused buffer, copies what its pages keep into
// arenas used again page after page, and encodes the pages into buffers
// used again once the store wrote them. Over rounds of appends and
// publishes, with payloads inline, by pointer, up to the head's inline
// limit and over it, every message reads back as it was appended.
func TestPublishKeepsEveryPayload(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 18))
	_, repo, w := newRepoWriter(t, 0)
	defer repo.Close()
	defer w.Close()
	ctx := context.Background()
	var want [][32]byte
	for round := range 3 { // a round is over the journal's read buffer (1 MiB) several times
		bodies := make([][]byte, 5000+round*1000)
		for i := range bodies {
			var n int
			switch r := rng.IntN(200); {
			case r == 0:
				n = 70<<10 + rng.IntN(300<<10) // over the head's inline limit, some in several chunks
			case r < 10:
				n = 4<<10 + rng.IntN(8<<10) // a pointer, inline in the head
			default:
				n = rng.IntN(1200)
			}
			b := make([]byte, n)
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			bodies[i] = b
			want = append(want, sha256.Sum256(b))
		}
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := readAll(t, repo, repo.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d messages, appended %d", len(got), len(want))
	}
	for i, m := range got {
		if sha256.Sum256(m.Body) != want[i] {
			t.Fatalf("message %d (%d bytes) is not what was appended", i+1, len(m.Body))
		}
	}
}

// strictPacker is a packing store that holds its caller to PutPacked's
// contract: it reads a call's blocks until the next PutPacked or Sync
// returns (then it stores copies), and that call fails if their bytes
// changed in between: the caller reused them too early.
type strictPacker struct {
	*cas.Memory
	mu     sync.Mutex
	flying []blocks.Block
	sums   [][32]byte
}

func (s *strictPacker) PutPacked(ctx context.Context, blks []blocks.Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(ctx); err != nil {
		return err
	}
	s.flying = blks
	for _, b := range blks {
		s.sums = append(s.sums, sha256.Sum256(b.RawData()))
	}
	return nil
}

func (s *strictPacker) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(ctx)
}

func (s *strictPacker) write(ctx context.Context) error {
	for i, b := range s.flying {
		if sha256.Sum256(b.RawData()) != s.sums[i] {
			return fmt.Errorf("block %s changed before the store wrote it", b.Cid())
		}
		if err := s.Memory.Put(ctx, []blocks.Block{cas.NewBlock(b.Cid(), bytes.Clone(b.RawData()))}); err != nil {
			return err
		}
	}
	s.flying, s.sums = nil, nil
	return nil
}

func (s *strictPacker) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	for _, b := range s.flying {
		if b.Cid() == c {
			s.mu.Unlock()
			return bytes.Clone(b.RawData()), nil
		}
	}
	s.mu.Unlock()
	return s.Memory.Get(ctx, c)
}

func (s *strictPacker) Has(ctx context.Context, c cid.Cid) (bool, error) {
	b, err := s.Get(ctx, c)
	return b != nil && err == nil, nil
}

// TestPublishReusesPagesOnlyOnceWritten: a publish reuses the buffers its
// pages were encoded in only once the packing store is done with them.
func TestPublishReusesPagesOnlyOnceWritten(t *testing.T) {
	pol, _ := pager.Preset("paged")
	w := newWorld(t, pol)
	strict := &strictPacker{Memory: w.store}
	w.cfg.Store = strict
	w.reopen(t)
	for i := 0; i < 30_000; i += 10_000 { // several batches of pages
		w.appendN(t, i, 10_000, 200)
	}
	w.publish(t)
	got, _, err := readAll(t, w, w.w.Name(), remotelog.Cursor{}, remotelog.ReadOptions{})
	if err != nil || len(got) != 30_000 {
		t.Fatalf("read %d messages: %v", len(got), err)
	}
	for i, m := range got {
		if want := body(i); !bytes.HasPrefix(m.Body, want) {
			t.Fatalf("message %d is %.20q, want %q", i+1, m.Body, want)
		}
	}
}
