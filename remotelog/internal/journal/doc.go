// Package journal is the writer's durable local log: an append-only file of
// CRC-framed records and an index of their offsets. Append returns only once
// both are fsynced. Open repairs what a crash can leave: a torn record at
// the end of the journal (never acknowledged, so dropped) and an index that
// lags or runs ahead of the journal (rebuilt from the journal, which is the
// truth). A damaged record before the end is an error, never dropped.
//
// Record i (0-based) holds the entry of sequence number i+1:
//
//	journal: "RLOGJNL1" or "RLOGJNL2", then per record:
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
