// Package journal is the writer's durable local log: an append-only file of
// CRC-framed records and an index of their offsets. Append returns only once
// the journal is fsynced (one fsync a batch: the index is written, not
// synced, since it is derived from the journal). Open repairs what a crash
// can leave: a torn record at the end of the journal (never acknowledged,
// so dropped) and an index that lags or runs ahead of the journal (rebuilt
// from the journal, which is the truth, and synced then). A damaged record
// before the end is an error, never dropped.
//
// Record i (0-based) holds the entry of sequence number base+i+1, where
// base is 0 but in a compacted journal:
//
//	journal: "RLOGJNL1" or "RLOGJNL2", or "RLOGJNL3" u64le base, then per record:
//	         u32le n | u32le crc32c(body) | body[n & 0x7fffffff]
//	body:    id[32] | wire payload                         (n's top bit clear)
//	         id[32] | u64le size | i64le timestamp | cid   (top bit set: a ref)
//	index:   u64le offset of each record
//
// A ref record is a large message whose wire payload is stored once, as a
// UnixFS file in the block store, before the record is written. A journal
// gets the "RLOGJNL2" header before its first ref record, so that a build
// that does not know refs refuses the journal rather than truncate it.
//
// A compacted journal ("RLOGJNL3", written by CopyFrom) starts after base:
// the entries 1..base live elsewhere (the writer's sealed pages), and Get
// and Scan of them fail with ErrCompacted. Its header allows ref records;
// a build that does not know it refuses it rather than number its entries
// from 1.
//
// Usage (the repo's writer is its only user; the repo's lock gives one
// writer):
//
//	j, err := journal.Open(dir, false)
//	if err != nil { ... }
//	defer j.Close()
//	last, err := j.Append([]journal.Entry{{ID: id, Payload: wire}}) // durable now
//	e, err := j.Get(last)
//	err = j.Scan(1, j.Len(), func(seq uint64, e journal.Entry) error { ...; return nil })
package journal
