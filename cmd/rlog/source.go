package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	return a.localKuboAPI()
}

// localKuboAPI reads the API address a running daemon wrote in its repo.
func (a *app) localKuboAPI() (string, error) {
	ipfsPath := a.getenv("IPFS_PATH")
	if ipfsPath == "" {
		ipfsPath = filepath.Join(a.getenv("HOME"), ".ipfs")
	}
	b, err := os.ReadFile(filepath.Join(ipfsPath, "api"))
	if err != nil {
		return "", usagef("this repo publishes to Kubo but no daemon is running: %s has no api file (start `ipfs daemon`, or give --api MULTIADDR)", ipfsPath)
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
			return nil, nil, err
		}
		from += api
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
	src, err := remotelog.OpenSource(ctx, from)
	if err != nil {
		return nil, nil, err
	}
	return src, func() { src.Close() }, nil
}

// withWriter opens the repo and its writer for f, and closes both after.
// With publishing, the writer is on the repo's backend (Kubo when set);
// without, it touches only the local log.
func (a *app) withWriter(ctx context.Context, publishing bool, f func(repo *remotelog.Repo, w *remotelog.Writer) error) error {
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

const fromHelp = "where to read: a directory holding another rlog repo, kubo:MULTIADDR (kubo: alone for the local daemon), or a gateway http(s)://HOST[:PORT]; default: this repo's backend"
