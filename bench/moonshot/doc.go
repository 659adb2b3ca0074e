// Command moonshot is the catch-up benchmark of docs/PERFORMANCE.md ("the
// 30-days-offline phone"): a log of --messages messages of --size bytes; a
// reader --behind messages behind and one from scratch catch up through
// `rlog serve` and through Kubo's gateway, each behind a proxy that adds
// --rtt of round trip to every request and counts requests, sequential
// rounds and bytes; and Hypercore's figure for the same catch-ups (a node
// script beside this one) in the same run.
//
//	go build -o bin/rlog ./cmd/rlog
//	(cd bench/hypercore && npm ci)
//	source KUBO_ENV   # RLOG_KUBO_API, RLOG_KUBO_GW: an offline daemon (optional)
//	go run ./bench/moonshot --rlog bin/rlog [--json]
//
// Time is from the start of the catch-up (the record's resolve included)
// until the last message is delivered and verified. Each reader runs in a
// process of its own (this program, started again) and reports its peak
// Go heap. --repo DIR writes the log there once and reads it as it is on
// later runs; --budget sets the reader's memory budget in MiB;
// --cpuprofile writes each reader's CPU profile.
package main
