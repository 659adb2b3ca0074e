package remotelog

import (
	"context"
	"errors"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/cas"
	"rlog/namesys"
	"rlog/pager"
)

// Finding is one problem Check found, typed so scripts can act on it.
type Finding struct {
	Kind   string `json:"kind"` // see findingKinds
	Detail string `json:"detail"`
	err    error
}

// Err is the error behind the finding.
func (f Finding) Err() error { return f.err }

// findingKinds maps errors to kinds, first match wins.
var findingKinds = []struct {
	err  error
	kind string
}{
	{cas.ErrHashMismatch, "hash-mismatch"},
	{cas.ErrNotFound, "missing-block"},
	{cas.ErrTruncated, "truncated-file"},
	{ErrNoLog, "no-record"},
	{namesys.ErrInvalid, "invalid-record"},
	{ErrRollback, "rollback"},
	{pager.ErrVersion, "unknown-version"},
	{pager.ErrMalformed, "malformed-page"},
	{pager.ErrTooLarge, "malformed-page"},
	{ErrInvalidLog, "inconsistent-log"},
	{ErrFork, "fork"},
}

func finding(err error) Finding {
	for _, k := range findingKinds {
		if errors.Is(err, k.err) {
			return Finding{Kind: k.kind, Detail: err.Error(), err: err}
		}
	}
	return Finding{Kind: "error", Detail: err.Error(), err: err}
}

// CheckReport is what Check found.
type CheckReport struct {
	Name      string    `json:"name"`
	Head      string    `json:"head,omitempty"`
	RecordSeq uint64    `json:"record_seq,omitempty"`
	ValidTo   time.Time `json:"record_valid_to,omitzero"`
	Messages  uint64    `json:"messages"`
	Pages     int       `json:"pages"`
	Blocks    int       `json:"blocks"`
	Bytes     int64     `json:"bytes"`
	Findings  []Finding `json:"findings"`
}

// OK reports a log with no findings.
func (r *CheckReport) OK() bool { return len(r.Findings) == 0 }

// Check verifies log name in src completely: the record (signature,
// validity), then from head (the record's value, unless head is defined)
// every block's hash, every page's form, number and links, sequence
// continuity, and every message id. The log is read to the end even when
// the record has a problem; reading stops at the first problem in the log.
func Check(ctx context.Context, src Source, name ipns.Name, head cid.Cid, now func() time.Time) CheckReport {
	rep := CheckReport{Name: name.String(), Findings: []Finding{}}
	rec, err := namesys.Resolve(ctx, src, name, now())
	var hint namesys.Hint
	switch {
	case err == nil:
		rep.RecordSeq, rep.ValidTo = rec.Sequence, rec.Validity
		if !head.Defined() || rec.Value.Equals(head) {
			hint = rec.Hint // checked against the head
		}
		if !head.Defined() {
			head = rec.Value
		} else if !rec.Value.Equals(head) {
			rep.Findings = append(rep.Findings, finding(errorsf(ErrInvalidLog, "the record points at %s, not at the head %s", rec.Value, head)))
		}
	case errors.Is(err, namesys.ErrNotFound):
		rep.Findings = append(rep.Findings, finding(errorsf(ErrNoLog, "%v", err)))
	default:
		rep.Findings = append(rep.Findings, finding(err))
	}
	if !head.Defined() {
		return rep
	}
	rep.Head = head.String()
	count := &teeSource{src: src, put: func(_ cid.Cid, b []byte) error {
		rep.Blocks++
		rep.Bytes += int64(len(b))
		return nil
	}}
	_, st, err := CatchUp(ctx, count, name, Cursor{}, ReadOptions{Head: head, Hint: hint, Now: now, Whole: true}, func(Message) error { return nil })
	rep.Messages, rep.Pages = st.Messages, st.Pages
	if err != nil {
		rep.Findings = append(rep.Findings, finding(err))
	}
	return rep
}
