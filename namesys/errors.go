package namesys

import "errors"

var (
	// ErrNotFound is returned by a Resolver that holds no record for a name.
	ErrNotFound = errors.New("no record for name")
	// ErrInvalid wraps every reason a record is refused: bad encoding, a
	// signature that does not verify against the name, expiry, a value that
	// is not /ipfs/<CID>.
	ErrInvalid = errors.New("invalid ipns record")
	// ErrReadOnly is returned by Publish on a read-only backend.
	ErrReadOnly = errors.New("name store is read-only")
	// ErrFork: two valid records of one name carry the same sequence
	// number and different values. Only the name's key signs records, so
	// it signed two histories (one key on two devices); neither is picked.
	ErrFork = errors.New("log forked")
	// ErrRollback: a record's sequence is lower than one already held.
	ErrRollback = errors.New("record rolled back")
)
