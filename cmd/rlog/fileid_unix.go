//go:build unix

package main

import (
	"hash/fnv"
	"io/fs"
	"strconv"
	"syscall"
)

// fileID names a file by its device and inode, folded into a number; 0
// when they are not known.
func fileID(st fs.FileInfo) uint64 {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatUint(uint64(s.Dev), 10) + ":" + strconv.FormatUint(uint64(s.Ino), 10)))
	return h.Sum64() | 1
}
