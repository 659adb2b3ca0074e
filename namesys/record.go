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
	rec, err := verify(name, raw)
	if err != nil {
		return nil, err
	}
	if now.After(rec.Validity) {
		return nil, fmt.Errorf("namesys: record for %s: %w: expired at %s", name, ErrInvalid, rec.Validity.UTC().Format(time.RFC3339))
	}
	return rec, nil
}

// verify is Parse without its end-of-life check at a caller's time, for
// stores that have no clock (boxo itself refuses records expired by the
// wall clock).
func verify(name ipns.Name, raw []byte) (*Record, error) {
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

// Compare compares got, a verified record of a name met somewhere, with
// held, the verified record already held for it (nil when none; a zero
// Value means its value is unknown). It returns nil when got is newer
// (higher sequence) or the same record (same sequence and value, so taking
// it again is harmless); an error wrapping ErrRollback when got is older;
// and one wrapping ErrFork, naming both values, when both carry one
// sequence and different values. Callers never replace held with got
// unless it returns nil, and never pick either side of a fork.
func Compare(held, got *Record) error {
	switch {
	case held == nil || got.Sequence > held.Sequence:
		return nil
	case got.Sequence < held.Sequence:
		return fmt.Errorf("%w: record sequence %d is lower than %d, held before", ErrRollback, got.Sequence, held.Sequence)
	case !held.Value.Defined() || held.Value.Equals(got.Value):
		return nil
	}
	return fmt.Errorf("%w: two records of %s carry sequence %d: the one held points at %s, the other at %s",
		ErrFork, got.Name, got.Sequence, held.Value, got.Value)
}

// ForkResolver is the optional ability of a name store to keep the proof of
// a fork it refused: the other record, beside the one it holds, until a
// newer record supersedes both. Dir has it.
type ForkResolver interface {
	// ResolveFork returns the marshalled other record of a fork of name,
	// unverified, or an error wrapping ErrNotFound when there is none.
	ResolveFork(ctx context.Context, name ipns.Name) ([]byte, error)
}
