package main

import (
	"rlog/remotelog"
)

// source opens --from, or the local repo when from is empty. The returned
// release func closes what was opened (never the local repo itself).
func (a *app) source(from string, local *remotelog.Repo) (remotelog.Source, func(), error) {
	if from == "" {
		return local, func() {}, nil
	}
	src, err := remotelog.OpenSource(from)
	if err != nil {
		return nil, nil, err
	}
	return src, func() { src.Close() }, nil
}

// withWriter opens the repo and its writer for f, and closes both after.
func (a *app) withWriter(f func(repo *remotelog.Repo, w *remotelog.Writer) error) error {
	repo, err := a.openRepo()
	if err != nil {
		return err
	}
	defer repo.Close()
	w, err := repo.Writer(nil)
	if err != nil {
		return err
	}
	defer w.Close()
	return f(repo, w)
}

// withSource opens the repo and the source named by from (the repo itself
// when empty) for f, and closes both after.
func (a *app) withSource(from string, f func(repo *remotelog.Repo, src remotelog.Source) error) error {
	repo, err := a.openRepo()
	if err != nil {
		return err
	}
	defer repo.Close()
	src, release, err := a.source(from, repo)
	if err != nil {
		return err
	}
	defer release()
	return f(repo, src)
}

const fromHelp = "where to read: a directory holding another rlog repo (e.g. a synced folder); default: this repo"
