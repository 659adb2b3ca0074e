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

const fromHelp = "where to read: a directory holding another rlog repo (e.g. a synced folder); default: this repo"
