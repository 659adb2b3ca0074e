package remotelog_test

import (
	"crypto/ed25519"
	"sync"
	"testing"

	"github.com/ipfs/boxo/ipns"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"rlog/remotelog"
)

// TestGroupsConcurrentAdd: members added to a group at once, each through
// its own store as separate processes would, are all kept, and so are the
// heads saved meanwhile: groups.json is changed under a lock.
func TestGroupsConcurrentAdd(t *testing.T) {
	dir := t.TempDir()
	if err := remotelog.Groups(dir).Create("room"); err != nil {
		t.Fatal(err)
	}
	const n = 24
	names := make([]ipns.Name, n)
	for i := range names {
		seed := make([]byte, 32)
		seed[0], seed[1] = 0x6d, byte(i)
		sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(sk)
		if err != nil {
			t.Fatal(err)
		}
		names[i] = ipns.NameFromPeer(id)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range names {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[i] = remotelog.Groups(dir).AddMember("room", names[i])
		}()
		go func() {
			defer wg.Done()
			errs[n+i] = remotelog.Groups(dir).Update("room", func(g *remotelog.Group) error {
				g.Heads = append(g.Heads, names[i].String())
				return nil
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	g, err := remotelog.Groups(dir).Get("room")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != n || len(g.Heads) != n {
		t.Fatalf("kept %d of %d members and %d of %d heads: changes were lost", len(g.Members), n, len(g.Heads), n)
	}
}
