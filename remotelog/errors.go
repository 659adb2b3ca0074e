package remotelog

import (
	"errors"
	"fmt"

	"rlog/namesys"
)

var (
	// ErrBehind: the published log holds entries the local log does not
	// (the repo was restored from an old copy). Publishing would fork it.
	ErrBehind = errors.New("local log is behind the published log")
	// ErrDiverged: the published log and the local log differ at the same
	// sequence number. Publishing would fork it.
	ErrDiverged = errors.New("local log diverges from the published log")
	// ErrFork: two valid records of the log carry one sequence number and
	// different heads (its key signed two histories), or a reader's cursor
	// no longer matches the log (the id at the cursor's sequence changed,
	// or the log is shorter than the cursor). It is namesys.ErrFork.
	ErrFork = namesys.ErrFork
	// ErrRollback: a record's sequence is lower than one already seen. It
	// is namesys.ErrRollback.
	ErrRollback = namesys.ErrRollback
	// ErrInvalidLog wraps everything a reader refuses in a log's pages:
	// wrong page numbers, sequence gaps or overlaps, ids that do not match
	// their payloads.
	ErrInvalidLog = errors.New("invalid log")
	// ErrTooLarge: a message is over MaxBody.
	ErrTooLarge = errors.New("message too large")
	// ErrPastEnd: a cursor chosen by hand (one without a message id) is
	// beyond the log's last message. A saved cursor beyond it is ErrFork.
	ErrPastEnd = errors.New("cursor past the end of the log")
	// ErrNoLog: the name has no published log yet.
	ErrNoLog = errors.New("log not published")
	// ErrNotBackup: a CAR file is not a backup written by Backup (two
	// roots: the head page, then a manifest holding the name and its
	// signed record), e.g. a plain `ipfs dag export` of a head. Its blocks
	// are readable given the record, or a head the caller vouches for.
	ErrNotBackup = errors.New("not an rlog backup")
)

// errorsf wraps sentinel with a formatted detail.
func errorsf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
