//go:build !unix

package main

import "io/fs"

// fileID is 0 where device and inode are not known: the output is not
// reconciled with the progress (at least once, as to a pipe).
func fileID(fs.FileInfo) uint64 { return 0 }
