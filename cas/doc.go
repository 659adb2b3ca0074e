// Package cas is rlog's content-addressed storage: the Store interface and
// its backends. A store keeps blocks by CID; it computes nothing a reader
// trusts: Verify re-hashes every block read from it.
//
// Backends: Memory (tests), Embedded (a boxo blockstore on an on-disk
// LevelDB, the default repo store). Kubo, gateway and CAR backends
// implement the same interface.
//
// Payloads (H2) are stored as UnixFS files with CIDv1, raw leaves, SHA2-256,
// 256 KiB chunks and the balanced layout, exactly as `ipfs add
// --cid-version=1 --raw-leaves` stores them:
//
//	root, blks, err := cas.PayloadBlocks(payload)
//	err = store.Put(ctx, blks)
//	back, err := cas.ReadPayload(ctx, cas.Verify(store), root, limit)
package cas
