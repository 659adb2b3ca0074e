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
	mh "github.com/multiformats/go-multihash"
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
	// Hint is the signed hint the record carries, if any (Hint.Node
	// undefined when none).
	Hint Hint
}

// Hint is what a record can tell a reader about the head it points at
// (format v3), so that the reader fetches the head and its window node in
// one round when it needs both: the first sequence of the head's page
// (PageStart) and the CID of the head's window node (Node). It is signed
// with the record, but a reader still checks it against the head: the head
// must link Node and begin at PageStart.
type Hint struct {
	PageStart uint64
	Node      cid.Cid
}

// Metadata keys of the hint in a record's signed DAG-CBOR data (IPNS
// extensible data; "_" keeps them apart from the specification's fields).
const (
	HintStartKey = "_rlog_start"
	HintNodeKey  = "_rlog_window"
)

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
	return NewRecordHint(sk, head, seq, eol, ttl, Hint{})
}

// NewRecordHint is NewRecord with a hint in the signed data, when
// hint.Node is defined.
func NewRecordHint(sk crypto.PrivKey, head cid.Cid, seq uint64, eol time.Time, ttl time.Duration, hint Hint) ([]byte, error) {
	opts := []ipns.Option{ipns.WithV1Compatibility(false)}
	if hint.Node.Defined() {
		if err := hint.check(); err != nil {
			return nil, fmt.Errorf("namesys: make record: %w", err)
		}
		opts = append(opts, ipns.WithMetadata(map[string]any{HintStartKey: int64(hint.PageStart), HintNodeKey: hint.Node.Bytes()}))
	}
	rec, err := ipns.NewRecord(sk, path.FromCid(head), seq, eol, ttl, opts...)
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
	hint, err := parseHint(rec)
	if err != nil {
		return nil, fmt.Errorf("namesys: record for %s: %w: %w", name, ErrInvalid, err)
	}
	return &Record{Name: name, Value: ip.RootCid(), Sequence: seq, Validity: eol, TTL: ttl, Raw: raw, Hint: hint}, nil
}

// parseHint reads a record's hint: none, or both keys with a sequence and
// a window node's CID. Anything else is refused.
func parseHint(rec *ipns.Record) (Hint, error) {
	hasStart, hasNode := rec.MetadataExists(HintStartKey), rec.MetadataExists(HintNodeKey)
	if !hasStart && !hasNode {
		return Hint{}, nil
	}
	if !hasStart || !hasNode {
		return Hint{}, fmt.Errorf("hint: %s and %s come together, the record has one", HintStartKey, HintNodeKey)
	}
	sv, _ := rec.Metadata(HintStartKey)
	start, err := sv.AsInt()
	if err != nil {
		return Hint{}, fmt.Errorf("hint: %s is a %s, not an integer", HintStartKey, sv.Kind())
	}
	nv, _ := rec.Metadata(HintNodeKey)
	nb, err := nv.AsBytes()
	if err != nil {
		return Hint{}, fmt.Errorf("hint: %s is a %s, not bytes", HintNodeKey, nv.Kind())
	}
	n, c, err := cid.CidFromBytes(nb)
	if err != nil || n != len(nb) {
		return Hint{}, fmt.Errorf("hint: %s is not a binary CID", HintNodeKey)
	}
	if start < 0 {
		return Hint{}, fmt.Errorf("hint: %s is %d, not a sequence number", HintStartKey, start)
	}
	h := Hint{PageStart: uint64(start), Node: c}
	if err := h.check(); err != nil {
		return Hint{}, err
	}
	return h, nil
}

// check accepts what a writer can hint: a window node (a DAG-CBOR
// SHA2-256 CIDv1) of a head page after page 0, so starting at 2 or later.
func (h Hint) check() error {
	p := h.Node.Prefix()
	if p.Version != 1 || p.Codec != cid.DagCBOR || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("hint: window node %s is not a DAG-CBOR SHA2-256 CIDv1", h.Node)
	}
	if h.PageStart < 2 || h.PageStart > 1<<62 {
		return fmt.Errorf("hint: the head's page starts at %d, impossible for a head with a window node", h.PageStart)
	}
	return nil
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
