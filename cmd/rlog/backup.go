package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) backupCmd() *cobra.Command {
	var from, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "backup NAME -o FILE.car",
		Short: "Write a whole log, verified, to a CAR file",
		Long: `Resolve log NAME (from --from, else this repo's backend), read every page and
payload, verify them all, and write them to a CARv1 file: the head page is its first
root; the second root is a small manifest holding the log's name and its signed record.
Any IPFS tool reads the file (ipfs dag import); 'rlog restore' and 'rlog check' read it
back, and 'rlog fetch NAME --from FILE.car' reads the log from it. The file is written
under a temporary name and renamed when complete.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseName(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				return usagef("give the output file with -o FILE.car")
			}
			return a.withSource(cmd.Context(), from, func(_ *remotelog.Repo, src remotelog.Source) error {
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
				fmt.Fprintf(a.stdout, "wrote %s: %d messages, %d blocks, %d bytes, head %s\n", out, res.Messages, res.Blocks, res.Bytes, res.Head)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.Flags().StringVarP(&out, "output", "o", "", "the CAR file to write")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func (a *app) restoreCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore FILE.car",
		Short: "Import a backup into this repo, verifying it",
		Long: `Import a CAR file written by 'rlog backup' into this repo's store: every block's hash
is checked while importing, the record against the log's name, and the whole log from
its head. The record replaces the repo's own only if it is newer. Restore never touches
a writer's local log, so restoring into the writer's own repo cannot fork the published
log: if the local log is behind, 'rlog publish' says so and 'rlog recover' brings it back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			repo, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer repo.Close()
			res, err := remotelog.Restore(cmd.Context(), f, repo.Store(), repo.Names(), time.Now)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"name": res.Name.String(), "head": res.Head.String(), "messages": res.Messages,
					"blocks": res.Blocks, "record_seq": res.RecordSeq, "record_saved": res.RecordSaved})
			}
			saved := "kept the repo's record (same or newer)"
			if res.RecordSaved {
				saved = "saved its record"
			}
			fmt.Fprintf(a.stdout, "restored %s: %d messages, %d blocks, verified; record sequence %d: %s\n", res.Name, res.Messages, res.Blocks, res.RecordSeq, saved)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func (a *app) checkCmd() *cobra.Command {
	var from string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check NAME|FILE.car",
		Short: "Verify a log completely and report what is wrong",
		Long: `Verify a log, by name (from --from, else this repo's backend) or in a backup file:
the record's signature and validity, then every block's hash, every page's form,
number and links, sequence continuity and every message id. Prints a report with typed
findings (hash-mismatch, missing-block, no-record, invalid-record, rollback,
unknown-version, malformed-page, inconsistent-log, fork); --json for scripts. Exits 0
only when there is no finding.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			run := func(src remotelog.Source, nameArg string, head cid.Cid) error {
				name, err := parseName(nameArg)
				if err != nil {
					return err
				}
				rep := remotelog.Check(ctx, src, name, head, time.Now)
				if asJSON {
					if err := writeJSON(a.stdout, rep); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(a.stdout, "log       %s\nhead      %s\nrecord    sequence %d, valid to %s\nmessages  %d in %d pages, %d blocks, %d bytes\n",
						rep.Name, rep.Head, rep.RecordSeq, rep.ValidTo.UTC().Format(time.RFC3339), rep.Messages, rep.Pages, rep.Blocks, rep.Bytes)
					for _, f := range rep.Findings {
						fmt.Fprintf(a.stdout, "finding   %s: %s\n", f.Kind, f.Detail)
					}
					if rep.OK() {
						fmt.Fprintln(a.stdout, "ok        no findings")
					}
				}
				if !rep.OK() {
					return fmt.Errorf("%d finding(s): %w", len(rep.Findings), rep.Findings[0].Err())
				}
				return nil
			}
			if st, err := os.Stat(args[0]); err == nil && !st.IsDir() {
				src, err := remotelog.OpenCARSource(ctx, args[0])
				if err != nil {
					return err
				}
				defer src.Close()
				cs := src.(*remotelog.CARSource)
				return run(cs, cs.Name().String(), cs.Head)
			}
			return a.withSource(ctx, from, func(_ *remotelog.Repo, src remotelog.Source) error {
				return run(src, args[0], cid.Undef)
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
