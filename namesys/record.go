package namesys

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Publisher stores a signed record for a name.
type Publisher interface {
	// Publish stores raw, a marshalled signed record, as the current
	// record of name. It never signs anything itself.
	Publish(ctx context.Context, name ipns.Name, raw []byte) error
}

// Resolver fetches the current record of a name.
type Resolver interface {
	// Resolve returns the marshalled record, unverified, or an error
	// wrapping ErrNotFound.
	Resolve(ctx context.Context, name ipns.Name) ([]byte, error)
}

// Record is a record that Parse has verified.
type Record struct {
	Name     ipns.Name
	Value    cid.Cid // the head page
	Sequence uint64
	Validity time.Time // end of life
	TTL      time.Duration
	Raw      []byte
}

// NameOf is the IPNS name of a key.
func NameOf(pk crypto.PubKey) (ipns.Name, error) {
	pid, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return ipns.Name{}, fmt.Errorf("namesys: name of key: %w", err)
	}
	return ipns.NameFromPeer(pid), nil
}

// NewRecord makes and signs a V2 record pointing name at /ipfs/head.
func NewRecord(sk crypto.PrivKey, head cid.Cid, seq uint64, eol time.Time, ttl time.Duration) ([]byte, error) {
	rec, err := ipns.NewRecord(sk, path.FromCid(head), seq, eol, ttl, ipns.WithV1Compatibility(false))
	if err != nil {
		return nil, fmt.Errorf("namesys: make record: %w", err)
	}
	raw, err := ipns.MarshalRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("namesys: marshal record: %w", err)
	}
	return raw, nil
}

// Parse decodes raw and verifies it as a record of name at time now: the
// V2 signature by the name's key, the end of life and a value of the form
// /ipfs/<CID>. Every refusal wraps ErrInvalid.
func Parse(name ipns.Name, raw []byte, now time.Time) (*Record, error) {
	if len(raw) > ipns.MaxRecordSize {
		return nil, fmt.Errorf("namesys: record for %s: %w: %d bytes, limit %d", name, ErrInvalid, len(raw), ipns.MaxRecordSize)
	}
	rec, err := ipns.UnmarshalRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("namesys: record for %s: %w: %w", name, ErrInvalid, err)
	}
	if err := ipns.ValidateWithName(rec, name); err != nil {
		return nil, fmt.Errorf("namesys: record for %s: %w: %w", name, ErrInvalid, err)
	}
	eol, err := rec.Validity()
	if err != nil {
		return nil, fmt.Errorf("namesys: record for %s: %w: %w", name, ErrInvalid, err)
	}
	if now.After(eol) {
		return nil, fmt.Errorf("namesys: record for %s: %w: expired at %s", name, ErrInvalid, eol.UTC().Format(time.RFC3339))
	}
	seq, err := rec.Sequence()
	if err != nil {
		return nil, fmt.Errorf("namesys: record for %s: %w: %w", name, ErrInvalid, err)
	}
	ttl, err := rec.TTL()
	if err != nil {
		return nil, fmt.Errorf("namesys: record for %s: %w: %w", name, ErrInvalid, err)
	}
	v, err := rec.Value()
	if err != nil {
		return nil, fmt.Errorf("namesys: record for %s: %w: %w", name, ErrInvalid, err)
	}
	ip, err := path.NewImmutablePath(v)
	if err != nil || len(ip.Segments()) != 2 {
		return nil, fmt.Errorf("namesys: record for %s: %w: value %q is not /ipfs/<CID>", name, ErrInvalid, v)
	}
	return &Record{Name: name, Value: ip.RootCid(), Sequence: seq, Validity: eol, TTL: ttl, Raw: raw}, nil
}

// Resolve fetches and verifies the record of name.
func Resolve(ctx context.Context, r Resolver, name ipns.Name, now time.Time) (*Record, error) {
	raw, err := r.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	return Parse(name, raw, now)
}
