package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/boxo/ipns"

	"rlog/remotelog"
)

// maxReconcile bounds what a fetch reads back of its output file: the
// lines printed and not recorded are those of one message, and its line
// is under 1.4 MiB (a 1 MiB body in base64, larger ones go to files).
const maxReconcile = 16 << 20

// markedOutput is where fetch prints: it knows where the output stands
// after each line (when it is a regular file), for the progress file to
// record with the message, and on a start after a kill it reconciles the
// file with the progress. A kill between printing a message and recording
// it leaves the message's line past the last recorded mark: the next run,
// which delivers that message again, finds the same line there and does
// not print it twice; a line cut short by the kill is completed. Bytes
// there that are not the next lines as this run prints them (another
// program wrote to the file, or the format flags changed) are said on
// standard error and left alone, and printing goes on after them.
type markedOutput struct {
	w       io.Writer
	file    uint64 // the regular file printed to; 0 if not one
	offset  int64  // its size after the last line, as far as this run knows
	pending []byte // bytes past the last recorded mark, not matched yet
	notice  func(format string, args ...any)
	name    string
	// What the reconciling did, for the notice at the end.
	skipped  int
	repaired bool
}

// exactlyOnce opens the progress file of log name for a read that starts
// at cur, and the output (standard output) reconciled with it; the output's
// mark before any message is recorded.
func (a *app) exactlyOnce(cursors remotelog.CursorStore, name ipns.Name, cur remotelog.Cursor) (*markedOutput, *remotelog.Progress, error) {
	last, hasLast, err := cursors.LastProgress(name)
	if err != nil {
		return nil, nil, err
	}
	mo, err := newMarkedOutput(a.stdout, last, hasLast, cur.Seq, func(format string, args ...any) {
		fmt.Fprintf(a.stderr, "rlog: "+format+"\n", args...)
	})
	if err != nil {
		return nil, nil, err
	}
	prog, err := cursors.Progress(name, cur)
	if err != nil {
		return nil, nil, err
	}
	if err := prog.Start(mo.Mark()); err != nil {
		prog.Close()
		return nil, nil, err
	}
	return mo, prog, nil
}

// printRecorded prints m (out writes to mo) and then records it in prog
// with where the output stands after it.
func printRecorded(out *printer, mo *markedOutput, prog *remotelog.Progress, m remotelog.Message) error {
	if killHook != nil && out.outDir == "" {
		killAt(out, m, mo.w)
	}
	if err := out.print(m); err != nil {
		return err
	}
	if killHook != nil {
		killHook("printed", m.Seq, nil, nil)
	}
	return prog.DeliveredTo(m.Seq, m.ID, mo.Mark())
}

// newMarkedOutput wraps w for a fetch that starts after message startSeq;
// last is the progress file's last record, when ok.
func newMarkedOutput(w io.Writer, last remotelog.ProgressEntry, ok bool, startSeq uint64, notice func(string, ...any)) (*markedOutput, error) {
	o := &markedOutput{w: w, notice: notice}
	f, isFile := w.(*os.File)
	if !isFile {
		return o, nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return o, nil
	}
	o.file, o.offset, o.name = fileID(st), st.Size(), f.Name()
	if o.file == 0 || !ok || last.Out.File != o.file || last.Seq != startSeq {
		return o, nil
	}
	switch extra := o.offset - last.Out.Offset; {
	case extra < 0:
		notice("the output file is %d bytes shorter than when message %d was recorded as printed; printing from message %d on at its end", -extra, last.Seq, last.Seq+1)
	case extra > maxReconcile:
		notice("the output file has %d bytes past message %d, more than one message's line: printing from message %d on after them", extra, last.Seq, last.Seq+1)
	case extra > 0:
		// Read it back through a new descriptor: standard output is
		// usually open for writing only.
		r, err := os.Open(f.Name())
		if err != nil {
			return nil, fmt.Errorf("read back the output file to reconcile it with the progress: %w", err)
		}
		defer r.Close()
		if rst, err := r.Stat(); err != nil || fileID(rst) != o.file {
			notice("cannot read back the output file (%s) to look for message %d: it may be printed twice", f.Name(), last.Seq+1)
			return o, nil
		}
		o.pending = make([]byte, extra)
		if _, err := r.ReadAt(o.pending, last.Out.Offset); err != nil {
			return nil, fmt.Errorf("read back the output file to reconcile it with the progress: %w", err)
		}
		o.offset = last.Out.Offset
	}
	return o, nil
}

// Reconciling reports whether lines of the run killed before are still
// expected: a line that is not a message (follow's status) waits.
func (o *markedOutput) Reconciling() bool { return len(o.pending) > 0 }

// Mark is where the output stands now, for the progress file.
func (o *markedOutput) Mark() remotelog.OutputMark {
	if o.file == 0 {
		return remotelog.OutputMark{}
	}
	return remotelog.OutputMark{File: o.file, Offset: o.offset}
}

// Write prints one message's line (the printer writes a line at a time).
func (o *markedOutput) Write(b []byte) (int, error) {
	if len(o.pending) > 0 {
		switch {
		case bytes.HasPrefix(o.pending, b):
			// Printed by the run before, which was killed before it
			// recorded the message.
			o.pending = o.pending[len(b):]
			o.offset += int64(len(b))
			o.skipped++
			if len(o.pending) == 0 {
				o.reconciled()
			}
			return len(b), nil
		case bytes.HasPrefix(b, o.pending):
			// Cut short by the kill: the rest of the line.
			done := len(o.pending)
			o.offset += int64(done)
			o.pending = nil
			o.repaired = true
			o.reconciled()
			n, err := o.w.Write(b[done:])
			o.offset += int64(n)
			return done + n, err
		default:
			o.foreign()
		}
	}
	n, err := o.w.Write(b)
	o.offset += int64(n)
	return n, err
}

// foreign gives up reconciling: what is left past the mark is not this
// run's lines.
func (o *markedOutput) foreign() {
	o.notice("the output file has %d bytes after the last message recorded as printed that are not the next messages as printed now (written by another program, or with other flags); left as they are, printing after them", len(o.pending))
	o.offset += int64(len(o.pending))
	o.pending = nil
}

// Done ends reconciling when the fetch ends; when it delivered all it
// could (finished), bytes past the mark still not matched are said.
func (o *markedOutput) Done(finished bool) {
	if finished && len(o.pending) > 0 {
		o.foreign()
	}
}

// reconciled says what was found past the mark, once it is all matched.
func (o *markedOutput) reconciled() {
	switch {
	case o.skipped > 0 && o.repaired:
		o.notice("%s already in the output file from the run that was killed, and the line it cut short completed: not printed again", plural(o.skipped, "message"))
	case o.skipped > 0:
		o.notice("%s already in the output file from the run that was killed: not printed again", plural(o.skipped, "message"))
	default:
		o.notice("the line the run that was killed cut short completed in the output file")
	}
}

// killHook, set only in builds with the rlogkillhook tag, lets a test kill
// fetch at a chosen point: "halfline" before a message's line is printed
// (it writes half of line first), "printed" after it is printed and before
// it is recorded.
var killHook func(stage string, seq uint64, w io.Writer, line []byte)

// killAt runs killHook's "halfline" stage with the line p would print for m.
func killAt(p *printer, m remotelog.Message, w io.Writer) {
	var buf bytes.Buffer
	q := *p
	q.w = &buf
	if q.print(m) == nil {
		killHook("halfline", m.Seq, w, buf.Bytes())
	}
}
