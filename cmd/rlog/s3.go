package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"rlog/cas"
	"rlog/namesys"
	"rlog/remotelog"
)

// Backups to S3-compatible buckets: backup -o s3://…, restore s3://…,
// check s3://…, keep --backup s3://…, and --from s3://… for readers.

const s3Help = `An s3://BUCKET/PREFIX bucket is reached with the usual AWS environment variables:
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_REGION or
AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL (or --s3-endpoint) for a service other than
AWS, such as MinIO: --s3-endpoint http://127.0.0.1:9000.`

// s3FlagOn gives cmd --s3-endpoint and returns where its value goes.
func s3FlagOn(cmd *cobra.Command) *string {
	var ep string
	cmd.Flags().StringVar(&ep, "s3-endpoint", "", "S3 service URL, e.g. http://127.0.0.1:9000 (default $AWS_ENDPOINT_URL, else AWS)")
	return &ep
}

// openS3 opens the bucket of url, endpoint overriding the environment's.
func (a *app) openS3(url, endpoint string) (*remotelog.S3Bucket, error) {
	cfg := cas.S3ConfigFromEnv(a.getenv)
	if endpoint != "" {
		cfg.Endpoint = endpoint
	}
	b, err := remotelog.OpenS3(url, cfg)
	if err != nil {
		return nil, usageFail(err, "%v", err)
	}
	return b, nil
}

// s3Name is the log to read in bucket b: given, or the only one it holds.
func s3Name(ctx context.Context, b *remotelog.S3Bucket, given string) (ipns.Name, error) {
	if given != "" {
		return parseName(given)
	}
	name, err := b.OnlyName(ctx)
	if err != nil {
		return name, failf(err, "%s (give the log with --name)", strings.TrimPrefix(err.Error(), "remotelog: "))
	}
	return name, nil
}

// backupS3 backs log name, read from src, up to the bucket at url.
func (a *app) backupS3(ctx context.Context, src remotelog.Source, name ipns.Name, url, endpoint string, repair, asJSON bool) error {
	b, err := a.openS3(url, endpoint)
	if err != nil {
		return err
	}
	bar := a.progress("backing up")
	if repair {
		bar = a.progress("repairing")
	}
	res, err := remotelog.BackupS3(ctx, src, name, b, remotelog.S3BackupOptions{Progress: bar.update, Repair: repair})
	bar.finish()
	if err != nil {
		return explain("backup to "+url, err)
	}
	if asJSON {
		return writeJSON(a.stdout, map[string]any{"url": res.URL, "name": res.Name, "head": res.Head.String(), "record_seq": res.RecordSeq,
			"messages": res.Messages, "blocks": res.Blocks, "bytes": res.Bytes, "uploaded": res.Uploaded, "uploaded_bytes": res.UploadedBytes,
			"record_written": res.RecordWritten, "incremental": res.Incremental, "repair": repair})
	}
	record := "record unchanged"
	if res.RecordWritten {
		record = "record written"
	}
	read, written := "the whole log", "new"
	if res.Incremental {
		read = "from the bucket's head on"
	}
	if repair {
		written = "missing or damaged written again"
	}
	fmt.Fprintf(a.stdout, "backed up %s to %s: %s, %s read (%s), %d %s (%s), head %s, sequence %d, %s\n", name, res.URL,
		plural(res.Messages, "message"), plural(res.Blocks, "block"), read, res.Uploaded, written, plural(res.UploadedBytes, "byte"), res.Head, res.RecordSeq, record)
	return nil
}

// restoreS3 restores a log from the bucket at url into this repo.
func (a *app) restoreS3(ctx context.Context, url, endpoint, given string, asJSON bool) error {
	b, err := a.openS3(url, endpoint)
	if err != nil {
		return err
	}
	name, err := s3Name(ctx, b, given)
	if err != nil {
		return err
	}
	repo, err := a.openOrInitRepo(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	bar := a.progress("restoring")
	var res remotelog.RestoreResult
	err = a.quiet(func() (err error) {
		res, err = remotelog.RestoreS3(ctx, b, name, repo.Dir, repo.Store(), repo.Names(), time.Now, bar.update)
		return err
	})
	bar.finish()
	if err != nil {
		return explain("restore "+url+" (nothing restored)", err)
	}
	return a.printRestored(res, asJSON)
}

// checkS3 checks a log in the bucket at url, against the record this repo
// holds for it, if any.
func (a *app) checkS3(ctx context.Context, url, endpoint, given string) (remotelog.CheckReport, ipns.Name, error) {
	b, err := a.openS3(url, endpoint)
	if err != nil {
		return remotelog.CheckReport{}, ipns.Name{}, err
	}
	name, err := s3Name(ctx, b, given)
	if err != nil {
		return remotelog.CheckReport{}, name, err
	}
	var held *namesys.Record
	if dir, err := a.repoDir(); err == nil {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			if ro, err := remotelog.OpenReadOnly(dir); err == nil {
				held, _ = namesys.Resolve(ctx, ro, name, time.Now())
				ro.Close()
			}
		}
	}
	return remotelog.CheckHeld(ctx, b, name, held, time.Now), name, nil
}

// keepBackup returns what keep calls after each record it keeps: a push
// of the log to the bucket at url, or nil without one.
func (a *app) keepBackup(ctx context.Context, url, endpoint string, store cas.Getter, say func(format string, args ...any)) (func(*namesys.Record), error) {
	if url == "" {
		return nil, nil
	}
	if !remotelog.IsS3URL(url) {
		return nil, usagef("--backup takes s3://BUCKET/PREFIX, not %q", url)
	}
	b, err := a.openS3(url, endpoint)
	if err != nil {
		return nil, err
	}
	return func(rec *namesys.Record) {
		res, err := remotelog.BackupS3(ctx, remotelog.RecordSource{Getter: store, Record: rec}, rec.Name, b, remotelog.S3BackupOptions{})
		if err != nil {
			say("%s: backup to %s failed: %s; trying again at the next publish\n", rec.Name, url, a.brief(err))
			return
		}
		say("backed up %s to %s: record sequence %d, %s new\n", rec.Name, res.URL, res.RecordSeq, plural(res.Uploaded, "block"))
	}, nil
}
