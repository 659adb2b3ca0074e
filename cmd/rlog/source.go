package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/cas"
	"rlog/mvds"
	"rlog/namesys"
	"rlog/remotelog"
)

// kuboAPI is the Kubo API multiaddr to use, or "" for none: --api, else the
// repo's kubo_api, else, for a repo set to use Kubo, the daemon found from
// $IPFS_PATH/api (default ~/.ipfs/api).
func (a *app) kuboAPI(repo *remotelog.Repo) (string, error) {
	if a.apiFlag != "" {
		return a.apiFlag, nil
	}
	if repo == nil || repo.Config.Backend != "kubo" {
		return "", nil
	}
	if repo.Config.KuboAPI != "" {
		return repo.Config.KuboAPI, nil
	}
	api, err := a.localKuboAPI()
	if err != nil {
		return "", failf(err, "this repo publishes to Kubo, but %v: start `ipfs daemon`, or give --api MULTIADDR", err)
	}
	return api, nil
}

// errNoDaemon: no Kubo daemon runs where rlog looked. It exits 1 (an
// error), like a daemon that does not answer, wherever the address came from.
var errNoDaemon = errors.New("no Kubo daemon is running")

// localKuboAPI reads the API address a running daemon wrote in its repo.
func (a *app) localKuboAPI() (string, error) {
	ipfsPath := a.getenv("IPFS_PATH")
	if ipfsPath == "" {
		ipfsPath = filepath.Join(a.getenv("HOME"), ".ipfs")
	}
	b, err := os.ReadFile(filepath.Join(ipfsPath, "api"))
	if err != nil {
		return "", fmt.Errorf("%w (%s has no api file)", errNoDaemon, ipfsPath)
	}
	return strings.TrimSpace(string(b)), nil
}

// backend is where the repo publishes: its Kubo daemon, or nil for the
// embedded store. release closes what was opened.
func (a *app) backend(ctx context.Context, repo *remotelog.Repo) (*remotelog.Backend, func(), error) {
	api, err := a.kuboAPI(repo)
	if err != nil || api == "" {
		return nil, func() {}, err
	}
	k, err := remotelog.OpenKubo(ctx, api)
	if errors.Is(err, cas.ErrUnreachable) {
		return nil, nil, failf(err, "the Kubo daemon at %s does not answer: start it with `ipfs daemon`, or give --api with the address of a running one", api)
	}
	if err != nil {
		return nil, nil, err
	}
	return k.(*remotelog.KuboBackend).Backend(), func() { k.Close() }, nil
}

// source opens --from, else the repo's Kubo daemon when it has one, else
// the local repo itself. release closes what was opened.
func (a *app) source(ctx context.Context, from string, local *remotelog.Repo) (remotelog.Source, func(), error) {
	if from == "kubo:" { // the local daemon
		api, err := a.localKuboAPI()
		if err != nil {
			return nil, nil, failf(err, "--from kubo: reads through the local Kubo daemon, but %v: start `ipfs daemon`, or give kubo:MULTIADDR", err)
		}
		from += api
	}
	if local != nil && from != "" && samePath(from, local.Dir) {
		return local, func() {}, nil // this repo itself
	}
	if from == "" {
		api, err := a.kuboAPI(local)
		if err != nil {
			return nil, nil, err
		}
		if api == "" {
			return local, func() {}, nil
		}
		from = "kubo:" + api
	}
	src, err := a.openSources(ctx, []string{from})
	if err != nil {
		return nil, nil, err
	}
	return src, func() { src.Close() }, nil
}

// isNetSource reports whether --from names a source across a network,
// whose requests are retried: a gateway or a bucket.
func isNetSource(from string) bool {
	return strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://") || remotelog.IsS3URL(from)
}

// openSources opens one or more --from arguments as one source. Sources
// across a network, and several sources of any kind, are read through a
// pool: requests spread over them, retried when they fail for a reason
// that may pass, moved to another source when one fails or stalls; a
// source that stops answering is reported in one line on stderr.
func (a *app) openSources(ctx context.Context, froms []string) (remotelog.SourceCloser, error) {
	if len(froms) == 1 && !isNetSource(froms[0]) {
		return a.openSource(ctx, froms[0])
	}
	ps := &pooled{}
	var members []remotelog.PoolSource
	for _, from := range froms {
		if from == "kubo:" {
			api, err := a.localKuboAPI()
			if err != nil {
				ps.Close()
				return nil, failf(err, "--from kubo: reads through the local Kubo daemon, but %v: start `ipfs daemon`, or give kubo:MULTIADDR", err)
			}
			from += api
		}
		src, err := a.openSource(ctx, from)
		if err != nil {
			ps.Close()
			return nil, err
		}
		ps.closers = append(ps.closers, src)
		members = append(members, remotelog.PoolSource{Name: from, Src: src})
	}
	policy := remotelog.RetryPolicy{Attempts: a.retries}
	if a.retries == 1 {
		policy.Cuts = 1 // no retry at all
	}
	ps.Pool = remotelog.NewPool(policy, members...)
	ps.Pool.Notice = func(line string) { fmt.Fprintf(a.stderr, "rlog: %s\n", line) }
	return ps, nil
}

// pooled is a pool with the sources to close after.
type pooled struct {
	*remotelog.Pool
	closers []io.Closer
}

func (p *pooled) Close() error {
	var errs []error
	for _, c := range p.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func samePath(a, b string) bool {
	x, err1 := filepath.Abs(a)
	y, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && x == y
}

// openSource opens a --from argument, saying what is wrong with it when
// it is none of the forms --from takes.
func (a *app) openSource(ctx context.Context, from string) (remotelog.SourceCloser, error) {
	if remotelog.IsS3URL(from) {
		return a.openS3(from, "")
	}
	src, err := remotelog.OpenSource(ctx, from)
	switch {
	case err == nil:
		return src, nil
	case errors.Is(err, remotelog.ErrNoRepo):
		return nil, failf(err, "--from %s: this folder is not an rlog repo (it has no config.json); %s", from, fromForms)
	case errors.Is(err, cas.ErrUnreachable):
		return nil, failf(err, "--from %s: the Kubo daemon at %s does not answer: start it with `ipfs daemon`, or give the address of a running one", from, strings.TrimPrefix(from, "kubo:"))
	case !strings.Contains(from, ":"):
		st, serr := os.Stat(from)
		if serr != nil {
			return nil, failf(noFile(serr), "--from %s: no such file or folder; %s", from, fromForms)
		}
		if !st.IsDir() && !strings.HasSuffix(from, ".car") {
			return nil, usageFail(err, "--from %s: not a folder or a .car file; %s", from, fromForms)
		}
	case errors.Is(err, remotelog.ErrUnknownSource):
		return nil, usageFail(err, "--from %s: not a folder, a file or a form rlog knows; %s", from, fromForms)
	}
	return nil, explain("--from "+from, err)
}

// fromForms says what --from accepts.
const fromForms = "--from takes a repo folder, a backup file (FILE.car), kubo:MULTIADDR (kubo: for the local daemon), a gateway http(s)://HOST[:PORT] or a backup bucket s3://BUCKET/PREFIX"

// withWriter opens the repo and its writer for f, and closes both after.
// With publishing, the writer is on the repo's backend (Kubo when set);
// without, it touches only the local log.
func (a *app) withWriter(ctx context.Context, publishing bool, f func(repo *remotelog.Repo, w *remotelog.Writer) error) error {
	if a.node != nil {
		return a.node.WithWriter(func(w *remotelog.Writer) error { return f(a.node.LendRepo(), w) })
	}
	repo, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	var b *remotelog.Backend
	if publishing {
		var release func()
		if b, release, err = a.backend(ctx, repo); err != nil {
			return err
		}
		defer release()
	}
	w, err := repo.Writer(b, nil)
	if err != nil {
		return err
	}
	defer w.Close()
	return f(repo, w)
}

// logWriter is what append and publish need: the repo's own writer, or,
// while another process (rlog serve) owns the repo, that owner.
type logWriter interface {
	Append(ctx context.Context, group []byte, bodies [][]byte) ([]remotelog.Appended, error)
	AppendMeta(ctx context.Context, group []byte, md *mvds.Metadata, bodies [][]byte) ([]remotelog.Appended, error)
	AppendFile(ctx context.Context, group []byte, path string) (remotelog.Appended, error)
	Publish(ctx context.Context, opts remotelog.PublishOptions) (remotelog.PublishResult, error)
}

// withLogWriter runs f with the repo's writer, or through the process that
// owns the repo when one does.
func (a *app) withLogWriter(ctx context.Context, publishing bool, f func(cfg remotelog.Config, w logWriter) error) error {
	err := a.withWriter(ctx, publishing, func(repo *remotelog.Repo, w *remotelog.Writer) error { return f(repo.Config, w) })
	if !errors.Is(err, remotelog.ErrLocked) {
		return err
	}
	dir, derr := a.repoDir()
	if derr != nil {
		return err
	}
	if !ownerListens(dir) {
		return err // locked by a process that takes no requests
	}
	owner, derr := remotelog.DialControl(dir)
	if derr != nil {
		return err
	}
	cfg, cerr := remotelog.LoadConfig(dir)
	if cerr != nil {
		return cerr
	}
	return f(cfg, owner)
}

// ownerListens says whether a process that owns the repo in dir answers
// on its control socket (one left by a process that died does not).
func ownerListens(dir string) bool {
	c, err := net.DialTimeout("unix", remotelog.ControlSocket(dir), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// withSource opens the repo and the source named by from for f, and
// closes both after.
func (a *app) withSource(ctx context.Context, from string, f func(repo *remotelog.Repo, src remotelog.Source) error) error {
	repo, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	src, release, err := a.source(ctx, from, repo)
	if err != nil {
		return err
	}
	defer release()
	return f(repo, src)
}

// withSources is withSource for --from given any number of times: several
// sources are read as one pool.
func (a *app) withSources(ctx context.Context, froms []string, f func(repo *remotelog.Repo, src remotelog.Source) error) error {
	if len(froms) <= 1 {
		return a.withSource(ctx, strings.Join(froms, ""), f)
	}
	repo, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	src, err := a.openSources(ctx, froms)
	if err != nil {
		return err
	}
	defer src.Close()
	return f(repo, src)
}

const fromsHelp = "; give it more than once to read from several sources: requests are spread over them and move to another when one fails or stalls"

const fromHelp = "where to read: a directory holding another rlog repo, kubo:MULTIADDR (kubo: alone for the local daemon), a gateway http(s)://HOST[:PORT], or a backup bucket s3://BUCKET/PREFIX (AWS_* environment); default: this repo's backend"

// notPublished says where rlog looked for log name when nothing is
// published under it there, and what to try next; other errors pass.
func (a *app) notPublished(name ipns.Name, from string, err error) error {
	if explained(err) || !(errors.Is(err, remotelog.ErrNoLog) || errors.Is(err, namesys.ErrNotFound)) {
		return err
	}
	if from != "" {
		return failf(err, "log %s is not published at %s: check the name, and that its writer published there", name, from)
	}
	where := "this repo"
	if dir, derr := a.repoDir(); derr == nil {
		where = "this repo (" + dir + ")"
		if cfg, cerr := remotelog.LoadConfig(dir); a.apiFlag != "" || (cerr == nil && cfg.Backend == "kubo") {
			where = "the Kubo daemon this repo uses"
		}
	}
	return failf(err, "log %s is not published in %s, where rlog looks without --from; to read it from elsewhere give --from: a repo folder, FILE.car, a gateway http(s)://HOST[:PORT] or kubo:", name, where)
}
