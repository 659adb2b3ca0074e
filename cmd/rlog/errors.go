package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"strings"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
	"rlog/remotelog"
)

// How a failure reaches the user: a command wraps what went wrong in a
// userError that says, in one line, what failed and what to do; rlog prints
// that line. The error it wraps, the whole chain from the libraries, still
// decides the exit code, and --debug prints it too.

// userError is a failure as the user reads it.
type userError struct {
	msg string
	err error // the cause, shown with --debug; may be nil
}

func (e userError) Error() string { return e.msg }
func (e userError) Unwrap() error { return e.err }

// failf wraps err, the cause, in the message the user reads.
func failf(err error, format string, args ...any) error {
	return userError{msg: fmt.Sprintf(format, args...), err: err}
}

// errNoFile: a file or folder named on the command line does not exist.
var errNoFile = errors.New("no such file or folder")

// noFile wraps the error of opening or reading path, when it does not exist,
// with errNoFile; other errors pass.
func noFile(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", errNoFile, err)
	}
	return err
}

// usageError marks a command line that is wrong, not a failure.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// usageFail is a usage error with a cause shown only with --debug.
func usageFail(err error, format string, args ...any) error {
	return usageError{failf(err, format, args...)}
}

// explained reports whether err already says what failed for the user.
func explained(err error) bool {
	var u userError
	var us usageError
	return errors.As(err, &u) || errors.As(err, &us)
}

// reasons are the failures rlog can name in a few words, in the order
// they are tried. Where the library said what it found, in its
// "sentinel: detail" form, and detail is set, that text is used instead.
var reasons = []struct {
	err    error
	text   string
	detail bool
}{
	{remotelog.ErrFork, "the log was rewritten since this repo last read it (fork)", true},
	{remotelog.ErrPastEnd, "the cursor is beyond the log's last message", true},
	{remotelog.ErrRollback, "the record is older than one seen before (rollback)", true},
	{remotelog.ErrBehind, "the published log holds messages the local log lacks: run 'rlog recover', then publish", true},
	{remotelog.ErrDiverged, "the local log differs from the published one: run 'rlog recover', then publish", true},
	{cas.ErrHashMismatch, "a block does not match its hash: the data is damaged or forged", false},
	{cas.ErrNotCAR, "the file is not a CAR file (a backup is one: 'rlog backup NAME -o FILE.car')", true},
	{cas.ErrTruncated, "the file is cut short: damaged, or not completely written", false},
	{namesys.ErrInvalid, "the record does not verify (bad signature, expired, or malformed)", false},
	{remotelog.ErrPrivate, "the log is private and this repo has no read key for it: read it with its share link (rlog share)", true},
	{remotelog.ErrDecrypt, "a sealed body does not open under the read key: changed, cut short, or another key", true},
	{remotelog.ErrInvalidLog, "the log does not verify (pages or messages inconsistent)", true},
	{pager.ErrVersion, "a page has a format version this rlog does not know", false},
	{pager.ErrMalformed, "a block is not a valid page", false},
	{pager.ErrTooLarge, "a page is larger than the format allows", false},
	{remotelog.ErrNoRepo, "no rlog repo there: create one with 'rlog init'", false},
	{remotelog.ErrLocked, "the repo is in use by another rlog process", true},
	{remotelog.ErrNoLog, "nothing is published under this name there", false},
	{namesys.ErrNotFound, "there is no record for this name there", false},
	{cas.ErrNotFound, "a block is missing there", false},
	{cas.ErrUnreachable, "the Kubo daemon does not answer: start it with `ipfs daemon`, or give the address of a running one", false},
}

// explain wraps err, a failure of what, with a short reason when rlog knows
// one; an error already explained is returned as it is, and one rlog cannot
// name keeps its own text.
func explain(what string, err error) error {
	if err == nil || explained(err) {
		return err
	}
	return failf(err, "%s: %s", what, reason(err))
}

// libPrefix is a library package's name where it begins a part of an
// error's text ("remotelog: ", "cas: "): what Go callers get, to tell which
// package failed.
var libPrefix = regexp.MustCompile(`(^|: |\()(?:remotelog|cas|namesys|pager|journal|mvds): `)

// plain is an error's text for the user: without the library packages'
// names, so that "remotelog: restore: cas: open car f.car: ..." reads
// "restore: open car f.car: ...". --debug shows them.
func plain(s string) string { return libPrefix.ReplaceAllString(s, "$1") }

// reason says in a few words why err happened: the reason rlog knows for
// it, or the network failure it is, or else its own text.
func reason(err error) string { return plain(reasonText(err)) }

func reasonText(err error) string {
	var u userError
	if errors.As(err, &u) {
		return u.msg
	}
	for _, r := range reasons {
		if !errors.Is(err, r.err) {
			continue
		}
		var cut *cas.TruncatedError
		if r.err == cas.ErrTruncated && errors.As(err, &cut) {
			return cutShort(cut)
		}
		if d := foundText(err, r.err); r.detail && d != "" {
			return d
		}
		return r.text
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return "cannot reach the source: " + op.Error()
	}
	return err.Error()
}

// cutShort says which file is cut short and where.
func cutShort(e *cas.TruncatedError) string {
	in := ""
	if e.Block.Defined() {
		in = ", inside block " + e.Block.String()
	}
	return fmt.Sprintf("%s is cut short at byte %d%s: damaged, or not completely written", e.Path, e.Size, in)
}

// foundText is the text of the error in err's chain that wraps sentinel
// first, as "sentinel: detail": what the library found, where it found it.
func foundText(err, sentinel error) string {
	if err == nil {
		return ""
	}
	if s := err.Error(); strings.HasPrefix(s, sentinel.Error()+": ") {
		return s
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return foundText(u.Unwrap(), sentinel)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if t := foundText(e, sentinel); t != "" {
				return t
			}
		}
	}
	return ""
}

// debugText is err with every cause a userError hides.
func debugText(err error) string {
	s := err.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		if u, ok := e.(userError); ok && u.err != nil {
			s += "\n  cause: " + u.err.Error()
		}
	}
	return s
}
