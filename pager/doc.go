// Package pager is page format v1 of the remote log: DAG-CBOR encoding and
// strict decoding of pages, their validation, and the pagination policy.
// It is pure: no I/O, no clock, no backend.
//
// A page is one DAG-CBOR block (see docs/FORMAT.md):
//
//	{"a": [multiaddr...],          head page only, optional
//	 "e": [{"i": id, "c": payload} | {"i": id, "r": CID}, ...],
//	 "l": [[CID, s], ...],         l[j] is page p-2^j
//	 "p": page number, "s": first sequence, "v": 1,
//	 "w": [[CID, s], ...]}         head page only: newest sealed pages
//
// Encode writes canonical DAG-CBOR; Decode accepts exactly what Encode
// writes and names the first thing that is wrong with anything else.
//
//	b, c, err := pager.Encode(pg)      // bytes and CID of the block
//	pg, err := pager.Decode(b)         // validated page
package pager
