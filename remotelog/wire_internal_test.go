package remotelog

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/cas"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/pager"
)

// TestAppendKeepsNoLargeBuffer: the buffer a writer encodes small
// messages into is sized for those alone (a large body goes to the block
// store) and is not kept large after an append, done or failed.
func TestAppendKeepsNoLargeBuffer(t *testing.T) {
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := pager.Preset("paged")
	names, store := namesys.NewMemory(), cas.NewMemory()
	w, err := OpenWriter(WriterConfig{Dir: t.TempDir(), Key: sk, Store: store, Publisher: names, Resolver: names,
		Policy: pol, Lifetime: DefaultLifetime, TTL: DefaultTTL, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	group := make([]byte, 32)
	big := make([]byte, 16<<20)
	if _, err := w.Append(ctx, group, [][]byte{[]byte("small"), big}); err != nil {
		t.Fatal(err)
	}
	if c := cap(w.wire); c > 1<<10 {
		t.Errorf("after a large and a small body, the buffer holds %d bytes", c)
	}
	md := &mvds.Metadata{Parents: [][]byte{make([]byte, 32)}}
	if _, err := w.AppendMeta(ctx, group, md, [][]byte{[]byte("small"), big}); err == nil {
		t.Fatal("a large body with parents was appended")
	}
	if c := cap(w.wire); c > maxWireKept {
		t.Errorf("after a failed append, the buffer keeps %d bytes", c)
	}
	smalls := make([][]byte, 20_000)
	for i := range smalls {
		smalls[i] = make([]byte, 400)
	}
	if _, err := w.Append(ctx, group, smalls); err != nil {
		t.Fatal(err)
	}
	if c := cap(w.wire); c > maxWireKept {
		t.Errorf("after a batch of 8 MB, the buffer keeps %d bytes", c)
	}
}
