package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) fetchCmd() *cobra.Command {
	var froms []string
	var since uint64
	var all, asJSON, keep bool
	var outDir string
	var recordFile, headArg string
	var groupName string
	var noWait, stable bool
	cmd := &cobra.Command{
		Use:   "fetch NAME|LINK | fetch --group GROUP",
		Short: "Print the messages of log NAME this repo has not seen yet",
		Long: `Resolve log NAME, fetch only the pages and payloads this repo has not seen, verify
every block hash, record signature, page number, sequence and message id, and print
the new messages in order. The repo remembers how far it has read (its cursor), so a
second run prints only what is new.

--since SEQ prints from SEQ+1 on instead, --all from the first message. If the log was
rewritten since the last fetch (the message at the cursor changed, or a record with the
sequence of the one read points at another head) rlog stops with a fork error (exit 3)
and prints nothing from the new history. --since beyond the log's last message is a bad
command line (exit 2) that says how many messages the log has.

Each message is one line: sequence, id (first 16 hex digits), time, body. A text body
is shown as it is, or as a quoted Go string when it has line breaks or other control
characters (or starts with a quote or "base64:"); any other body as base64:... .
--out DIR saves each body to a file DIR/SEQ-ID instead and shows file:PATH; it is
needed for large messages (over 1 MiB), whose bodies are never held in memory.

--from may be given more than once (serve, a keeper, Kubo's gateway, any trustless
gateway): requests are spread over the sources and move to another when one fails; one
slow past a delay learned from the answers is asked of another too, the first verified
answer taken; everything verified either way. A request that fails for a reason that
may pass (a cut connection, no answer) is retried with backoff; what gives up and when
is in docs/CLI.md.

Each message is recorded as it is printed, and blocks fetched from a gateway are kept
until the fetch succeeds: a fetch that fails or is killed starts again after the last
message it printed and fetches nothing twice. Printing to a file
(rlog fetch NAME >> FILE), a run after a kill finds in FILE a line the killed one
printed and did not record, and does not print it again: the file holds each message
once. To a pipe, a kill between printing a message and recording it prints that one
message again.

--json prints one object per line: seq, id (hex), group (hex), timestamp, size, and
body (base64) with text (the body, when it is valid UTF-8), or file with --out; the last
line is {"summary": {...}}, what the fetch did (docs/CLI.md). Timestamps are RFC 3339.

A private log is read with its share link (rlog://NAME#keys=..., from its writer's
'rlog share') in place of NAME: the repo keeps the keys, and opens every body; later
fetches may give the bare name. Without its key rlog prints nothing of a private log
and exits with 6; a body that does not open under the key (changed, cut short, or
another key) stops the read with exit 4.

--group GROUP reads every member's log of a group kept in the repo ('rlog group'), in
parallel, each from its own cursor, from --from (given more than once, one pool as for
one log: each member's log is read wherever it is), and prints their messages merged:
each after the messages it names as parents and after its author's previous one, ties
broken by (height in the DAG, id), so every reader that read the same messages prints
them in the same order. Each line starts with the author's log name; --json lines gain
author and parents (hex ids).

A message whose parent no member's log gave yet is held back, with what follows it (said
on standard error: "waiting for 3 messages of k51..."), and printed by a later fetch
once the parent comes; --no-wait prints it now, its gap marked. A member that cannot be
read, or whose log forked or rolled back, is reported and not merged past that point;
the others are printed. --keep keeps the members' logs read, so that 'rlog log --group
GROUP' lists them without the source.`,
		Example: `  rlog fetch k51qzi5uqu5d... --from /media/usb/.rlog     # another repo's folder
  rlog fetch k51qzi5uqu5d... --from http://127.0.0.1:8080  # serve, or any gateway
  rlog fetch k51qzi5uqu5d... --from http://writer:8080 --from https://ipfs.io
  rlog fetch k51qzi5uqu5d... --from log.car --all          # everything in a backup
  rlog fetch k51qzi5uqu5d... --from kubo: --json           # through the local Kubo
  rlog fetch k51qzi5uqu5d... --from /media/usb/.rlog --out ~/received  # bodies as files
  rlog fetch --group room --from http://127.0.0.1:8080 --json`,
		Args: nameOrGroup(&groupName),
		RunE: func(cmd *cobra.Command, args []string) error {
			if groupName != "" {
				for _, f := range []string{"all", "since", "record", "head"} {
					if cmd.Flags().Changed(f) {
						return usagef("--%s reads one log: fetch --group reads each member's log from its own cursor ('rlog log --group %s' lists the group from the start)", f, groupName)
					}
				}
				if keep && len(froms) == 0 {
					return usagef("--keep with --group keeps the members' logs read from --from SOURCE: give --from")
				}
				return a.fetchGroup(cmd, groupName, froms, asJSON, groupRead{noWait: noWait, stable: stable, keep: keep}, outDir)
			}
			if noWait || stable {
				return usagef("--no-wait and --stable read a group: give --group NAME")
			}
			dir, err := a.repoDir()
			if err != nil {
				return err
			}
			name, undoKeys, err := nameArgUndo(dir, args[0])
			if err != nil {
				return err
			}
			if all && cmd.Flags().Changed("since") {
				return usagef("give --since or --all, not both")
			}
			if err := makeOutDir(outDir); err != nil {
				return err
			}
			from := strings.Join(froms, ", ")
			err = a.withSources(cmd.Context(), froms, func(repo *remotelog.Repo, src remotelog.Source) error {
				cur, err := repo.Cursor(name)
				if err != nil {
					return err
				}
				switch {
				case all:
					cur = remotelog.Cursor{RecordSeq: cur.RecordSeq, Head: cur.Head}
				case cmd.Flags().Changed("since"):
					cur = remotelog.Cursor{Seq: since, RecordSeq: cur.RecordSeq, Head: cur.Head}
				}
				// Each message delivered is recorded at once, with where the
				// output stood after it, so that a fetch killed at any moment
				// starts again after it and, printing to a file, finds in
				// the file what it printed and did not record.
				mo, prog, err := a.exactlyOnce(remotelog.Cursors(repo.Dir), name, cur)
				if err != nil {
					return err
				}
				defer prog.Close()
				out := &printer{w: mo, asJSON: asJSON, outDir: outDir}
				if keep || len(froms) == 0 {
					// Kept now, or read from what the repo kept: a large
					// body stays here, listed, not needed to go on.
					out.kept = name.String()
				}
				opts := remotelog.ReadOptions{SpoolDir: outDir}
				deliver, private, err := opening(dir, name, &opts, func(m remotelog.Message) error {
					return printRecorded(out, mo, prog, m)
				})
				out.private = private
				if err != nil {
					return err
				}
				if src, err = withVouched(src, name, recordFile, headArg, &opts); err != nil {
					return err
				}
				// Blocks fetched across a network are kept until the fetch
				// succeeds: one that fails or is killed part way does not
				// fetch them again.
				var cache *remotelog.BlockCache
				if slices.ContainsFunc(froms, isNetSource) {
					if cache, err = remotelog.CacheBlocks(src, filepath.Join(repo.Dir, "cache", "blocks"), 0); err != nil {
						return err
					}
					src = cache
				}
				var next remotelog.Cursor
				var st remotelog.Stats
				if keep {
					next, st, err = remotelog.CatchUpKeeping(cmd.Context(), src, name, cur, remotelog.KeepTarget{Store: repo.Store(), Names: repo.Names()}, opts, deliver)
				} else {
					next, st, err = remotelog.CatchUp(cmd.Context(), src, name, cur, opts, deliver)
				}
				mo.Done(err == nil)
				// Save how far we got, also after a failure part way.
				if next != cur || err == nil {
					if serr := repo.SaveCursor(name, next); serr != nil {
						return errors.Join(err, serr)
					}
				}
				if errors.Is(err, remotelog.ErrPastEnd) && cmd.Flags().Changed("since") {
					return usageFail(err, "--since %d: the log has only %s", since, plural(st.LogLength, "message"))
				}
				if errors.Is(err, remotelog.ErrDecrypt) && st.Messages == 0 {
					// The link's key opened nothing: not kept, so that
					// the right link is taken next time.
					if uerr := undoKeys(); uerr != nil {
						err = errors.Join(err, uerr)
					}
				}
				if err != nil {
					return privateHint(name, err)
				}
				if cache != nil {
					cache.Forget()
				}
				if asJSON {
					return writeJSONLine(a.stdout, map[string]any{"summary": fetchSummary(st)})
				}
				fmt.Fprintf(a.stderr, "%s; the log has %s; %s of fetches: %s, %s, %s\n",
					plural(st.Messages, "new message"), plural(st.LogLength, "message"), plural(st.Rounds, "round"),
					plural(st.Pages, "page fetch"), plural(st.Payloads, "payload fetch"), plural(st.BytesFetched, "byte"))
				return nil
			})
			if errors.Is(err, remotelog.ErrNotBackup) {
				return usageFail(err, "--from %s: %s; read it with the name's signed record given apart (--record FILE, e.g. saved from a gateway's /ipns/NAME?format=ipns-record) or with a head you vouch for (--head CID)", from, foundText(err, remotelog.ErrNotBackup))
			}
			return a.notPublished(name, from, err)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&froms, "from", nil, fromHelp+fromsHelp)
	f.StringVar(&recordFile, "record", "", "the name's signed IPNS record, from this file (for a source that has none, such as a plain CAR); verified as any record")
	f.StringVar(&headArg, "head", "", "read from this head page CID, which you vouch for, instead of the name's record: no record is checked")
	f.Uint64Var(&since, "since", 0, "print messages after this sequence number, ignoring the saved cursor")
	f.BoolVar(&all, "all", false, "print every message, ignoring the saved cursor")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per message, then a summary object")
	f.StringVar(&groupName, "group", "", "read every member's log of this group (rlog group) merged in causal order")
	f.BoolVar(&noWait, "no-wait", false, "with --group: print messages whose parents were not read, their gap marked, instead of holding them back")
	f.BoolVar(&stable, "stable", false, "with --group: print a message only once every member has written after it, so every reader prints the same order whenever it reads (docs/GROUPS.md)")
	f.StringVar(&outDir, "out", "", outHelp)
	f.BoolVar(&keep, "keep", false, "also keep the log (its blocks and record) in this repo, so that 'rlog fetch NAME --all' reads it again without the source; a large body is then kept, listed, and needs no --out")
	a.apiFlagOn(cmd)
	a.retriesFlagOn(cmd)
	return cmd
}

// fetchSummary is the last line of `fetch --json`.
func fetchSummary(st remotelog.Stats) map[string]any {
	m := map[string]any{
		"new_messages": st.Messages, "log_messages": st.LogLength, "record_seq": st.RecordSequence,
		"rounds": st.Rounds, "page_fetches": st.Pages, "payload_fetches": st.Payloads, "bytes_fetched": st.BytesFetched,
	}
	if st.Head.Defined() {
		m["head"] = st.Head.String()
	}
	return m
}

// withVouched applies --record and --head: src with the name's record read
// from a file, and the head to read from instead of any record.
func withVouched(src remotelog.Source, name ipns.Name, recordFile, head string, opts *remotelog.ReadOptions) (remotelog.Source, error) {
	if recordFile != "" && head != "" {
		return nil, usagef("give --record or --head, not both")
	}
	if head != "" {
		c, err := cid.Decode(head)
		if err != nil {
			return nil, usageFail(err, "--head %s: not a CID: %v", head, err)
		}
		opts.Head = c
	}
	if recordFile != "" {
		f, err := os.Open(recordFile)
		if err != nil {
			return nil, failf(noFile(err), "--record: %v", err)
		}
		defer f.Close()
		raw, err := io.ReadAll(io.LimitReader(f, int64(ipns.MaxRecordSize)+1))
		if err != nil {
			return nil, failf(err, "--record: %v", err)
		}
		if len(raw) > ipns.MaxRecordSize {
			return nil, usagef("--record %s: over %d bytes: not an IPNS record", recordFile, ipns.MaxRecordSize)
		}
		src = remotelog.WithRecord(src, name, raw)
	}
	return src, nil
}
