// Package remotelog replicates a node's message log to content-addressed
// storage and reads other nodes' logs from it: the vac remote log.
//
// A writer keeps a durable local log of MVDS messages in a repo (Init,
// Open), appends to it (Writer.Append, Writer.AppendFile) and publishes it
// (Writer.Publish): the log is cut into DAG-CBOR pages, the pages and large
// payloads are stored as blocks, and a signed IPNS record points the log's
// name at the newest page. The format is in docs/FORMAT.md.
//
// A reader needs only the name (ParseName) and a Source (OpenSource: a
// repo folder, a backup file, a Kubo daemon or any trustless gateway).
// CatchUp delivers, in order, the messages after a Cursor and returns the
// new cursor; Follow keeps doing so as the log grows. Every block hash,
// record signature, page number, sequence number and message id is checked
// before a message is delivered, and a log rewritten under a reader is
// reported as ErrFork, never delivered.
//
// Backup, Restore and Check carry a log as a CAR file and verify it whole;
// Keep holds other writers' logs so they stay readable while those writers
// are offline; Server serves a repo as a trustless gateway.
package remotelog
