package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"rlog/mvds"
	"rlog/remotelog"
)

func (a *app) appendCmd() *cobra.Command {
	var groupHex, groupName, file string
	var asJSON, ephemeral bool
	cmd := &cobra.Command{
		Use:   "append [BODY...]",
		Short: "Append messages to the local log; returns once they are on disk",
		Long: `Append one message per argument, or one per line of standard input when there
is none, or the whole of --file as one message. Prints the sequence number and id of
each; run 'rlog publish' to make them readable. Arguments and --file are appended
all or none: durable when the command returns, or nothing with an error.

Standard input is streamed in batches, each made durable with one fsync before its
lines are printed, so input of any length takes bounded memory: a printed line is an
acknowledged, durable message. A batch is what has arrived when rlog has read all it
can without waiting (up to 2048 lines or 1 MiB): a line typed or sent by a slow
producer is acknowledged at once, a fast pipe commits thousands of lines at a time.
When a batch fails (a full disk, a line too long), the batches before it stay
appended and the error says how many lines landed and from which line to resume.

A message body may be up to 4 GiB with --file, which streams the file: a large body
(over 1 MiB) is stored once, in the repo's block store, never held in memory. A line of
standard input may be up to 64 MiB. Readers save large bodies with 'fetch --out DIR'.

The group is the log's default group unless --group (hex) or --group-name (a text,
hashed with SHA-256 to 32 bytes) names another. When the repo keeps a group of that
name ('rlog group'), each message names in its MVDS metadata the newest messages of the
group this repo has seen (its parents: what 'rlog fetch --group' last read, and this
log's last message in the group), so readers deliver it after them.

--ephemeral sends each body instead as an ephemeral MVDS message (4/MVDS-META) through
the node that runs on this repo ('rlog run --sync', 'rlog sync') to its peers online
now: once, never logged, stored or retransmitted. It prints each message's id.`,
		Example: `  rlog append "hello" "world"
  printf 'one\ntwo\n' | rlog append
  rlog append --file photo.jpg
  rlog append --group-name room --json "hi"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" && len(args) > 0 {
				return usagef("give bodies as arguments or --file, not both")
			}
			var bodies [][]byte
			switch {
			case file != "":
				if _, err := os.Stat(file); err != nil {
					return err
				}
			case len(args) > 0:
				for _, s := range args {
					bodies = append(bodies, []byte(s))
				}
			}
			if ephemeral {
				if len(args) == 0 {
					return usagef("--ephemeral takes its bodies as arguments")
				}
				if file != "" || groupHex != "" || groupName != "" {
					return usagef("--ephemeral goes to the running node's sync group: give bodies only, no --file or --group")
				}
				return a.sendEphemeral(cmd, bodies, asJSON)
			}
			group, err := parseGroup(groupHex, groupName, nil)
			if err != nil {
				return err
			}
			// A group kept in the repo: each message names the group's
			// heads as its parents, and becomes its head.
			var md *mvds.Metadata
			var groups remotelog.GroupStore
			if groupName != "" {
				dir, err := a.repoDir()
				if err != nil {
					return err
				}
				groups = remotelog.Groups(dir)
				if g, err := groups.Get(groupName); err == nil {
					heads, err := g.HeadIDs()
					if err != nil {
						return err
					}
					if file != "" && len(heads) > 0 {
						return usagef("a large message (--file) cannot name parents yet: append it outside the group's conversation (--group)")
					}
					md = &mvds.Metadata{}
					for _, h := range heads {
						md.Parents = append(md.Parents, append([]byte(nil), h[:]...))
					}
				} else if !errors.Is(err, remotelog.ErrNoGroup) {
					return err
				}
			}
			// Appending touches only the local log, not the backend.
			return a.withLogWriter(cmd.Context(), false, func(cfg remotelog.Config, w logWriter) error {
				if group == nil {
					group = cfg.DefaultGroup()
				}
				seal, err := a.ownSealer()
				if err != nil {
					return err
				}
				// put appends a batch of bodies: sealed for a private log, and
				// in a group kept in the repo naming the group's heads as
				// parents, the last becoming the head.
				put := func(ctx context.Context, bodies [][]byte) ([]remotelog.Appended, error) {
					bodies, err := seal.bodies(group, bodies)
					if err != nil {
						return nil, err
					}
					var out []remotelog.Appended
					if md != nil && len(md.Parents) > 0 {
						out, err = w.AppendMeta(ctx, group, md, bodies)
					} else {
						out, err = w.Append(ctx, group, bodies)
					}
					if err != nil || md == nil || len(out) == 0 {
						return out, err
					}
					last := out[len(out)-1].ID
					if err := groups.Update(groupName, func(g *remotelog.Group) error {
						g.Heads = []string{last.String()}
						return nil
					}); err != nil {
						return out, fmt.Errorf("appended, but saving the group's heads failed: %w", err)
					}
					md.Parents = [][]byte{append([]byte(nil), last[:]...)}
					return out, nil
				}
				if file == "" && len(args) == 0 {
					return a.appendLines(cmd.Context(), w, group, put, asJSON)
				}
				var out []remotelog.Appended
				if file != "" {
					path, done, err := seal.file(group, file)
					if err != nil {
						return err
					}
					defer done()
					m, err := w.AppendFile(cmd.Context(), group, path)
					if err != nil {
						return err
					}
					out = append(out, m)
				} else if out, err = put(cmd.Context(), bodies); err != nil {
					return err
				}
				noteOtherGroup(cmd.Context(), a.stderr, w, group)
				printAppended(a.stdout, out, asJSON)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&groupHex, "group", "", "MVDS group id, hex")
	f.StringVar(&groupName, "group-name", "", "MVDS group named by a text (SHA-256 of it)")
	f.StringVar(&file, "file", "", "append this file's content as one message")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per message")
	f.BoolVar(&ephemeral, "ephemeral", false, "send each body once over MVDS to the running node's peers (typing, presence), never into the log; needs 'rlog run --sync' or 'rlog sync'")
	return cmd
}

// Standard input is appended in batches, each durable (one group commit)
// before its lines are acknowledged on standard output, so memory stays
// bounded however long the input is.
const (
	appendBatchLines = 2048
	appendBatchBytes = 1 << 20
)

// appendLines appends one message per line of standard input, streamed in
// batches. A batch is committed when no more input is at hand (a slow
// producer, such as a person typing, has each line acknowledged at once) or
// when it reaches the batch limits (a fast pipe commits thousands of lines
// with one fsync). When a batch fails, the batches before it stay appended:
// the error says how many messages landed and from which line to resume.
func (a *app) appendLines(ctx context.Context, w logWriter, group []byte, put func(context.Context, [][]byte) ([]remotelog.Appended, error), asJSON bool) error {
	in := &lineReader{r: bufio.NewReaderSize(a.stdin, appendBatchBytes), max: maxLine}
	// More input is at hand when it is buffered, or when a read would
	// return it now (a pipe a fast producer keeps full): the batch then
	// grows, and a slow producer's line is committed at once.
	atHand := func() bool { return in.r.Buffered() > 0 }
	if f, ok := a.stdin.(*os.File); ok {
		atHand = func() bool { return in.r.Buffered() > 0 || inputAtHand(f) }
	}
	out := bufio.NewWriterSize(a.stdout, 64<<10)
	var (
		batch  [][]byte
		size   int
		landed uint64
		arena  []byte
	)
	landedErr := func(err error) error {
		if landed == 0 {
			return fmt.Errorf("%w (nothing was appended)", err)
		}
		return fmt.Errorf("%w (%d messages, lines 1 to %d, were appended and printed; the rest was not: resume from line %d)", err, landed, landed, landed+1)
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		done, err := put(ctx, batch)
		landed += uint64(len(done))
		if err != nil {
			return landedErr(err)
		}
		if landed == uint64(len(done)) {
			noteOtherGroup(ctx, a.stderr, w, group)
		}
		printAppended(out, done, asJSON)
		batch, size, arena = batch[:0], 0, arena[:0]
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write standard output: %w", err)
		}
		return nil
	}
	for {
		line, err := in.next()
		if errors.Is(err, io.EOF) {
			break
		} else if errors.Is(err, errLineTooLong) {
			return landedErr(fmt.Errorf("read standard input: line %d is over 64 MiB: append a large body with --file", landed+uint64(len(batch))+1))
		} else if err != nil {
			return landedErr(fmt.Errorf("read standard input: %w", err))
		}
		if len(arena)+len(line) > cap(arena) {
			// A new arena: the bodies of the batch so far keep the old one.
			arena = make([]byte, 0, max(appendBatchBytes, len(line)))
		}
		arena = append(arena, line...)
		batch = append(batch, arena[len(arena)-len(line):len(arena):len(arena)])
		size += len(line)
		if len(batch) >= appendBatchLines || size >= appendBatchBytes || !atHand() {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if landed == 0 {
		return usagef("nothing to append: give bodies as arguments, lines on standard input, or --file")
	}
	return nil
}

// maxLine is the longest line of standard input append takes as a message.
const maxLine = 64 << 20

var errLineTooLong = errors.New("line too long")

// lineReader reads lines as bufio.ScanLines splits them (the end of line is
// \n or \r\n; a last line may lack it), leaving what it has not returned in
// r, so that r.Buffered() says whether more input is at hand.
type lineReader struct {
	r    *bufio.Reader
	max  int
	long []byte // a line longer than r's buffer, put together
}

// next returns the next line, valid until the following call, or io.EOF.
func (l *lineReader) next() ([]byte, error) {
	l.long = l.long[:0]
	for {
		frag, err := l.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(l.long)+len(frag) > l.max+1 {
				return nil, errLineTooLong
			}
			l.long = append(l.long, frag...)
			continue
		}
		line := frag
		if len(l.long) > 0 {
			l.long = append(l.long, frag...)
			line = l.long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(line) == 0 {
			return nil, io.EOF // err is io.EOF: nothing more
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > l.max {
			return nil, errLineTooLong
		}
		return line, nil
	}
}

// noteOtherGroup warns when the messages went through a running 'rlog
// sync' that sends another group than group.
func noteOtherGroup(ctx context.Context, stderr io.Writer, w logWriter, group []byte) {
	owner, ok := w.(*remotelog.ControlClient)
	if !ok {
		return
	}
	// rlog sync sends one group: say so when these went elsewhere.
	var st struct{ Group string }
	if owner.Status(ctx, &st) == nil && st.Group != "" && st.Group != hex.EncodeToString(group) {
		fmt.Fprintf(stderr, "note: appended to group %.16s..., which the running 'rlog sync' (group %.16s...) does not send; it is in the log only (sync sends the group given by its --group-name)\n", hex.EncodeToString(group), st.Group)
	}
}

func printAppended(w io.Writer, out []remotelog.Appended, asJSON bool) {
	var line []byte
	for _, m := range out {
		if asJSON {
			b, _ := json.Marshal(map[string]any{"seq": m.Seq, "id": m.ID.String(), "timestamp": rfc3339(time.Unix(m.Timestamp, 0))})
			fmt.Fprintf(w, "%s\n", b)
			continue
		}
		// "SEQ\tID": a line per message of a pipe, made without garbage.
		line = strconv.AppendUint(line[:0], m.Seq, 10)
		line = hex.AppendEncode(append(line, '\t'), m.ID[:])
		w.Write(append(line, '\n'))
	}
}

// sendEphemeral is append --ephemeral: through the node that owns the repo.
func (a *app) sendEphemeral(cmd *cobra.Command, bodies [][]byte, asJSON bool) error {
	send := func(b []byte) (string, error) {
		id, err := a.node.SendEphemeral(b)
		return id.String(), err
	}
	if a.node == nil {
		dir, err := a.repoDir()
		if err != nil {
			return err
		}
		if !ownerListens(dir) {
			return failf(nil, "--ephemeral: no node runs on %s: an ephemeral message goes to peers online now, through 'rlog run --sync' or 'rlog sync'", dir)
		}
		owner, err := remotelog.DialControl(dir)
		if err != nil {
			return err
		}
		send = func(b []byte) (string, error) { return owner.SendEphemeral(cmd.Context(), b) }
	}
	for _, b := range bodies {
		id, err := send(b)
		if err != nil {
			return err
		}
		if asJSON {
			if err := writeJSONLine(a.stdout, map[string]any{"id": id, "ephemeral": true}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(a.stdout, "-\t%s\n", id)
		}
	}
	return nil
}
