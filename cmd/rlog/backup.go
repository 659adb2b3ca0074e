package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) backupCmd() *cobra.Command {
	var from, out string
	var asJSON, repair bool
	var endpoint *string
	cmd := &cobra.Command{
		Use:   "backup NAME -o FILE.car|s3://BUCKET/PREFIX",
		Short: "Write a whole log, verified, to a CAR file",
		Long: `Resolve log NAME (from --from, else this repo's backend), read every page and
payload, verify them all, and write them to a CARv1 file: the head page is its first
root; the second root is a small manifest holding the log's name and its signed record.
Any IPFS tool reads the file (ipfs dag import); 'rlog restore' and 'rlog check' read it
back, and 'rlog fetch NAME --from FILE.car' reads the log from it. The file is written
under a temporary name and renamed when complete.

With -o s3://BUCKET/PREFIX the log goes to an S3-compatible bucket instead, laid out as
a trustless gateway: PREFIX/ipfs/{cid} holds each raw block (written once, its stored
hash checked, cached as immutable), PREFIX/ipns/{name} the signed record (cached for its
TTL), written last, so the bucket never points at a block it lacks. Backups are
incremental: only blocks the bucket lacks are uploaded. Interrupted, the bucket still
holds the previous complete backup and the next run completes it. A public bucket, or a
CDN in front of it, is a source for --from https://HOST/BUCKET/PREFIX.

The bucket's record says what it holds (it is written last): when the log extends the
log of that record, backup reads the log from that record's head page on and uploads
what is new, without listing the bucket or asking for any older block. It trusts the
bucket: a block removed or damaged behind its back is not seen. 'rlog check s3://…'
finds it, and 'rlog backup --repair' reads every block of the log back from the
bucket and writes again each one that is missing or holds other bytes, from the
verified local block (it downloads the whole log). Without a record in the bucket, or
when the bucket holds another history, backup lists the bucket and reads the whole log.

` + s3Help,
		Example: `  rlog backup k51qzi5uqu5d... -o log.car                          # this repo's own log
  rlog backup k51qzi5uqu5d... -o log.car --from http://writer:8080  # someone else's
  rlog backup k51qzi5uqu5d... -o log.car --json
  rlog backup k51qzi5uqu5d... -o s3://backups/rlog                  # AWS_* credentials
  rlog backup k51qzi5uqu5d... -o s3://backups/rlog --s3-endpoint http://127.0.0.1:9000
  # after 'rlog check s3://backups/rlog' found damage:
  rlog backup k51qzi5uqu5d... -o s3://backups/rlog --repair`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseName(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				return usagef("give the output file with -o FILE.car")
			}
			if repair && !remotelog.IsS3URL(out) {
				return usagef("--repair is for -o s3://BUCKET/PREFIX; a CAR file is written whole every time")
			}
			err = a.withSource(cmd.Context(), from, func(_ *remotelog.Repo, src remotelog.Source) error {
				if remotelog.IsS3URL(out) {
					return a.backupS3(cmd.Context(), src, name, out, *endpoint, repair, asJSON)
				}
				tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
				if err != nil {
					return err
				}
				defer os.Remove(tmp.Name())
				bar := a.progress("backing up")
				res, err := remotelog.Backup(cmd.Context(), src, name, tmp, time.Now, bar.update)
				bar.finish()
				if err == nil {
					err = tmp.Sync()
				}
				if cerr := tmp.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				if err := os.Rename(tmp.Name(), out); err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, map[string]any{"file": out, "head": res.Head.String(), "messages": res.Messages, "blocks": res.Blocks, "bytes": res.Bytes})
				}
				fmt.Fprintf(a.stdout, "wrote %s: %s, %s, %s, head %s\n", out, plural(res.Messages, "message"), plural(res.Blocks, "block"), plural(res.Bytes, "byte"), res.Head)
				return nil
			})
			return a.notPublished(name, from, err)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.Flags().StringVarP(&out, "output", "o", "", "the CAR file to write, or an s3://BUCKET/PREFIX")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&repair, "repair", false, "with -o s3://…: read every block back and write again those missing or damaged")
	endpoint = s3FlagOn(cmd)
	a.apiFlagOn(cmd)
	return cmd
}

func (a *app) restoreCmd() *cobra.Command {
	var asJSON bool
	var endpoint *string
	var nameFlag string
	cmd := &cobra.Command{
		Use:   "restore FILE.car|s3://BUCKET/PREFIX",
		Short: "Import a backup into this repo, verifying it",
		Long: `Import a CAR file written by 'rlog backup' into this repo's store. The file is verified
first (the record against the log's name, then the whole log from its head: every
block's hash, every page, every message id); only then are the log's own blocks stored,
and nothing else the file holds. The record replaces the repo's own only if it is
newer. With - as the file, the backup is read from standard input (kept in a temporary
file in the repo until it is verified). Restore never touches a writer's local log, so
restoring into the writer's own repo cannot fork the published log: if the local log is
behind, 'rlog publish' says so and 'rlog recover' brings it back.

A backup whose record has the sequence of the repo's and another head proves a fork (the
key published from two devices): restore says so (exit 3) and keeps the repo's record;
'rlog recover' in the writer's repo merges both logs. A backup that fails verification
stores nothing and exits 4, as 'rlog check' does. A repo that does not exist yet is
created.

From s3://BUCKET/PREFIX (a bucket written by 'rlog backup -o s3://…'), the log is
read and verified the same way, then restored: the bucket's only log, or the one
--name gives. A bucket whose record is older than the one this repo holds (an old
record put back) is refused as a rollback (exit 3).

` + s3Help,
		Example: `  rlog restore log.car --repo ~/other
  rlog restore log.car --json
  ssh host cat log.car | rlog restore -
  rlog restore s3://backups/rlog --repo ~/other`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if remotelog.IsS3URL(path) {
				return a.restoreS3(cmd.Context(), path, *endpoint, nameFlag, asJSON)
			}
			if path != "-" {
				f, err := os.Open(path)
				if err != nil {
					return failf(noFile(err), "restore: cannot open %s: %v", path, errors.Unwrap(err))
				}
				f.Close()
			}
			repo, err := a.openOrInitRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer repo.Close()
			if path == "-" {
				tmp, err := stageStdin(a.stdin, repo.Dir)
				if err != nil {
					return fmt.Errorf("restore: read standard input: %w", err)
				}
				defer os.Remove(tmp)
				path = tmp
			}
			var res remotelog.RestoreResult
			err = a.quiet(func() (err error) {
				res, err = remotelog.RestoreFile(cmd.Context(), path, repo.Store(), repo.Names(), time.Now)
				return err
			})
			if err != nil {
				return explain("restore "+args[0]+" (nothing restored)", err)
			}
			return a.printRestored(res, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&nameFlag, "name", "", "with s3://…: the log to restore, when the bucket holds several")
	endpoint = s3FlagOn(cmd)
	return cmd
}

// printRestored reports a restore.
func (a *app) printRestored(res remotelog.RestoreResult, asJSON bool) error {
	if asJSON {
		return writeJSON(a.stdout, map[string]any{"name": res.Name.String(), "head": res.Head.String(), "messages": res.Messages,
			"blocks": res.Blocks, "record_seq": res.RecordSeq, "record_saved": res.RecordSaved})
	}
	saved := "kept the repo's record (same or newer)"
	if res.RecordSaved {
		saved = "saved its record"
	}
	fmt.Fprintf(a.stdout, "restored %s: %s, %s, verified; record sequence %d: %s\n", res.Name, plural(res.Messages, "message"), plural(res.Blocks, "block"), res.RecordSeq, saved)
	return nil
}

func (a *app) checkCmd() *cobra.Command {
	var from, nameFlag string
	var asJSON bool
	var endpoint *string
	cmd := &cobra.Command{
		Use:   "check NAME|FILE.car|s3://BUCKET/PREFIX",
		Short: "Verify a log completely and report what is wrong",
		Long: `Verify a log, by name (from --from, else this repo's backend) or in a backup file:
the record's signature and validity, then every block's hash, every page's form,
number and links, sequence continuity and every message id. Prints a report with typed
findings (hash-mismatch, missing-block, no-record, invalid-record, rollback,
unknown-version, malformed-page, inconsistent-log, fork); --json for scripts. Exits 0
only when there is no finding; with a finding it exits 4 (3 for a rollback or fork).

An s3://BUCKET/PREFIX is checked the same way (its only log, or --name), and its
record against the one this repo holds for the log, if any: an older one is a
rollback finding.

` + s3Help,
		Example: `  rlog check log.car                  # a backup file
  rlog check k51qzi5uqu5d...          # a log in this repo's backend
  rlog check k51qzi5uqu5d... --from http://127.0.0.1:8080 --json
  rlog check s3://backups/rlog --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			report := func(rep remotelog.CheckReport) error {
				rep.ValidTo = rep.ValidTo.UTC().Truncate(time.Second) // RFC 3339 in seconds, as everywhere
				if asJSON {
					if err := writeJSON(a.stdout, rep); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(a.stdout, "log       %s\nhead      %s\nrecord    sequence %d, valid to %s\nmessages  %d in %s, %s, %s\n",
						rep.Name, rep.Head, rep.RecordSeq, rfc3339(rep.ValidTo), rep.Messages, plural(rep.Pages, "page"), plural(rep.Blocks, "block"), plural(rep.Bytes, "byte"))
					for _, f := range rep.Findings {
						detail := f.Detail
						switch {
						case a.debug:
						case f.Kind == "truncated-file":
							detail = reason(f.Err()) // which file, where
						default:
							detail = plain(detail)
						}
						fmt.Fprintf(a.stdout, "finding   %s: %s\n", f.Kind, detail)
					}
					if rep.OK() {
						fmt.Fprintln(a.stdout, "ok        no findings")
					}
				}
				if !rep.OK() {
					first := rep.Findings[0]
					if first.Kind == "truncated-file" {
						return failf(first.Err(), "check %s: %s", args[0], reason(first.Err()))
					}
					return failf(first.Err(), "check %s: %s (first: %s)", args[0], plural(len(rep.Findings), "finding"), first.Kind)
				}
				return nil
			}
			run := func(src remotelog.Source, name ipns.Name, head cid.Cid) error {
				return report(remotelog.Check(ctx, src, name, head, time.Now))
			}
			arg := args[0]
			if remotelog.IsS3URL(arg) {
				rep, _, err := a.checkS3(ctx, arg, *endpoint, nameFlag)
				if err != nil {
					return err
				}
				return report(rep)
			}
			if st, err := os.Stat(arg); err == nil && !st.IsDir() {
				src, err := remotelog.OpenCARSource(ctx, arg)
				if err != nil {
					return explain("check "+arg, err)
				}
				defer src.Close()
				cs := src.(*remotelog.CARSource)
				return run(cs, cs.Name(), cs.Head)
			}
			name, err := parseName(arg)
			if err != nil {
				if _, serr := os.Stat(arg); !looksLikeName(arg) && errors.Is(serr, fs.ErrNotExist) {
					return failf(noFile(serr), "check: %s does not exist (check takes a log name, k51..., or a backup file written by 'rlog backup')", arg)
				}
				return err
			}
			return a.notPublished(name, from, a.withSource(ctx, from, func(_ *remotelog.Repo, src remotelog.Source) error {
				return run(src, name, cid.Undef)
			}))
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().StringVar(&nameFlag, "name", "", "with s3://…: the log to check, when the bucket holds several")
	endpoint = s3FlagOn(cmd)
	a.apiFlagOn(cmd)
	return cmd
}

// stageStdin copies r to a temporary file in dir and returns its path.
func stageStdin(r io.Reader, dir string) (string, error) {
	tmp, err := os.CreateTemp(dir, ".restore-*.car")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// looksLikeName tells a mistyped log name from a path.
func looksLikeName(s string) bool {
	for _, p := range []string{"k51", "/ipns/", "12D3Koo", "bafz"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
