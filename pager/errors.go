package pager

import "errors"

var (
	// ErrMalformed is wrapped by every decoding error: the bytes are not a
	// valid page or index node (bad CBOR, not canonical, wrong types, missing or
	// unknown keys, inconsistent fields, over a limit).
	ErrMalformed = errors.New("malformed page")
	// ErrVersion is returned for a well-formed page of another format version.
	ErrVersion = errors.New("unsupported page format version")
	// ErrTooLarge is returned for a block over MaxPageBytes.
	ErrTooLarge = errors.New("page too large")
)
