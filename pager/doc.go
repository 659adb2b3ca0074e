// Package pager is the page format of the remote log, v2 (written) and v1
// (read): DAG-CBOR encoding and strict decoding of pages and index nodes,
// their validation, and the pagination policy. It is pure: no I/O, no
// clock, no backend.
//
// A v2 page is one DAG-CBOR block (see docs/FORMAT.md):
//
//	{"a": [multiaddr...],          head page only, optional
//	 "e": [payload | {"i": id, "r": CID}, ...],
//	 "p": page number, "s": first sequence, "v": 2,
//	 "w": [[CID, s], ...],         head page only: newest sealed pages
//	 "x": [[CID, n, s], ...]}      head page only: index nodes
//
// and an index node {"f": first page, "l": [[CID, s], ...], "v": 2} lists
// consecutive sealed pages. A v1 page carries ids in inline entries
// ({"c": payload, "i": id}) and skip links "l" instead of "x".
//
// Encode writes canonical DAG-CBOR; Decode accepts exactly what Encode
// writes and names the first thing that is wrong with anything else.
//
//	b, c, err := pager.Encode(pg)      // bytes and CID of the block
//	pg, err := pager.Decode(b)         // validated page, v1 or v2
//	ix, err := pager.DecodeIndex(b)    // validated index node
package pager
