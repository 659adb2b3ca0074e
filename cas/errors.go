package cas

import "errors"

var (
	// ErrNotFound is returned by Get for a block the store does not have.
	ErrNotFound = errors.New("block not found")
	// ErrHashMismatch is returned when a block's bytes do not hash to its CID.
	ErrHashMismatch = errors.New("block does not match its CID")
	// ErrReadOnly is returned by Put on a store opened read-only.
	ErrReadOnly = errors.New("store is read-only")
	// ErrTooLarge is returned for a payload over the caller's limit.
	ErrTooLarge = errors.New("payload too large")
	// ErrMalformedFile is returned for a payload file that is not laid out
	// as the format lays files out: more blocks than its size takes, sizes
	// that do not add up, nodes that are not file nodes.
	ErrMalformedFile = errors.New("malformed payload file")
	// ErrTruncated is returned for a file (a CAR) that ends in the middle
	// of a block: cut short, damaged or still being written.
	ErrTruncated = errors.New("file is cut short")
	// ErrNotCAR is returned for a file that does not begin as a CAR file
	// (v1 or v2) does: a length, then a header that is a CBOR map.
	ErrNotCAR = errors.New("not a CAR file")
	// ErrCut is returned when a source answered and its response was cut
	// before the end of the body: the source is there, the link dropped.
	ErrCut = errors.New("response cut short")
)
