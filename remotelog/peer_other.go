//go:build !linux

package remotelog

import (
	"errors"
	"io/fs"
	"net"
)

// peerUID: reading a unix socket peer's credentials is done on Linux
// only; elsewhere the control socket refuses every request.
func peerUID(net.Conn) (int, error) {
	return 0, errors.New("peer credentials: not supported on this system")
}

func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
