// Command rlog publishes a node's message log to content-addressed storage
// and reads other nodes' logs from it. Run `rlog --help`.
//
// A writer and a reader, in two repos:
//
//	rlog init                                  # prints the log's name, k51...
//	rlog append "hello" && rlog publish
//	rlog init --repo ~/reader
//	rlog fetch --repo ~/reader k51... --from ~/.rlog
//
// One process that owns a repo and serves, syncs, keeps, follows and
// publishes; every other command in the repo then runs in it:
//
//	rlog run --serve 127.0.0.1:8080 --publish-every 1m
//	rlog follow --repo ~/reader k51... --from http://127.0.0.1:8080
//
// docs/CLI.md documents the commands, their exit codes and JSON.
package main
