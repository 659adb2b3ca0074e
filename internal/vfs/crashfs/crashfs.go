// Package crashfs is an in-memory file system (a vfs.FS) that models a
// power cut: it keeps, per file, the bytes known durable (as of its last
// Sync) and the writes since, and per directory the entries known durable
// (as of its last SyncDir) and the changes since. Cut makes every later
// operation fail, as the machine stops; Reboot returns the file system a
// restart would find: the durable state plus, when given a random source,
// a random prefix of each file's unsynced writes (the last one possibly
// torn) and of each directory's unsynced changes.
//
// It is for tests: the power-cut test of the writer runs the repo's
// durable files on it.
//
//	fsys := crashfs.New()
//	fsys.CutAfter(n)   // the nth operation from now fails, and all after it
//	... run the writer until an operation fails ...
//	fsys = fsys.Reboot(rng)
package crashfs

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"rlog/internal/vfs"
)

// ErrPowerCut is the error of every operation from the cut on.
var ErrPowerCut = errors.New("crashfs: power cut")

// FS is the file system. It is safe for concurrent use.
type FS struct {
	mu    sync.Mutex
	root  *inode
	ops   int64 // operations that change something, done or refused
	cutAt int64 // the operation that meets the cut; 0: none planned
	cut   bool
}

type inode struct {
	dir  bool
	mode fs.FileMode

	// A file: its bytes now, as of its last sync, and the writes since.
	data    []byte
	durable []byte
	pending []fileOp

	// A directory: its entries now, as of its last sync, and the changes
	// since (each applied whole or not at all).
	entries  map[string]*inode
	dentries map[string]*inode
	dpending [][]dirChange
}

// fileOp is a write of data at off, or a truncation to size.
type fileOp struct {
	off   int64
	data  []byte
	trunc bool
	size  int64
}

// dirChange sets entry name to node, or removes it when node is nil.
type dirChange struct {
	name string
	node *inode
}

func newDir(mode fs.FileMode) *inode {
	return &inode{dir: true, mode: mode | fs.ModeDir, entries: map[string]*inode{}, dentries: map[string]*inode{}}
}

// New is an empty file system: only its root directory, durable.
func New() *FS { return &FS{root: newDir(0o755)} }

var _ vfs.FS = (*FS)(nil)

// Ops is the number of operations that change something (writes, syncs,
// truncations, entries made, renamed or removed) done so far.
func (f *FS) Ops() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// CutAfter plans the power cut: the nth operation that changes something
// from now on (n >= 1) fails and is not done, and every operation after it
// fails.
func (f *FS) CutAfter(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutAt = f.ops + max(n, 1)
}

// Cut cuts the power now.
func (f *FS) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = true
}

// IsCut reports whether the power is cut.
func (f *FS) IsCut() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut
}

// SyncAll makes everything durable, as a test's setup may need.
func (f *FS) SyncAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	var walk func(n *inode)
	walk = func(n *inode) {
		if !n.dir {
			n.durable, n.pending = slices.Clone(n.data), nil
			return
		}
		n.dentries, n.dpending = cloneEntries(n.entries), nil
		for _, c := range n.entries {
			walk(c)
		}
	}
	walk(f.root)
}

// Reboot returns the file system a restart after the cut finds. With rng
// nil it is the durable state alone; with rng, each file also keeps a
// random prefix of its unsynced writes, the last of them possibly cut
// short (a torn write), and each directory a random prefix of its
// unsynced changes. The file system rebooted has no cut planned; f stays
// cut.
func (f *FS) Reboot(rng *rand.Rand) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = true
	done := map[*inode]*inode{} // an inode reachable twice stays one
	var rebuild func(n *inode) *inode
	rebuild = func(n *inode) *inode {
		if m, ok := done[n]; ok {
			return m
		}
		if !n.dir {
			m := &inode{mode: n.mode, data: surviving(n, rng)}
			m.durable = slices.Clone(m.data)
			done[n] = m
			return m
		}
		m := newDir(n.mode)
		done[n] = m
		ents := cloneEntries(n.dentries)
		for _, ch := range n.dpending[:prefix(len(n.dpending), rng)] {
			for _, c := range ch {
				if c.node == nil {
					delete(ents, c.name)
				} else {
					ents[c.name] = c.node
				}
			}
		}
		for name, c := range ents {
			m.entries[name] = rebuild(c)
		}
		m.dentries = cloneEntries(m.entries)
		return m
	}
	return &FS{root: rebuild(f.root)}
}

// surviving is the content of file n after a reboot.
func surviving(n *inode, rng *rand.Rand) []byte {
	b := slices.Clone(n.durable)
	k := prefix(len(n.pending), rng)
	for i, op := range n.pending[:k] {
		data := op.data
		if i == k-1 && rng != nil && !op.trunc && rng.IntN(2) == 0 {
			data = data[:rng.IntN(len(data)+1)] // torn
		}
		b = apply(b, fileOp{off: op.off, data: data, trunc: op.trunc, size: op.size})
	}
	return b
}

// prefix is how many of n unsynced changes survive.
func prefix(n int, rng *rand.Rand) int {
	if rng == nil || n == 0 {
		return 0
	}
	return rng.IntN(n + 1)
}

func apply(b []byte, op fileOp) []byte {
	if op.trunc {
		if op.size <= int64(len(b)) {
			return b[:op.size]
		}
		return append(b, make([]byte, op.size-int64(len(b)))...)
	}
	if end := op.off + int64(len(op.data)); end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[op.off:], op.data)
	return b
}

func cloneEntries(m map[string]*inode) map[string]*inode {
	out := make(map[string]*inode, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// step counts an operation that changes something; it fails from the
// cut on. f.mu is held.
func (f *FS) step() error {
	if f.cut {
		return ErrPowerCut
	}
	f.ops++
	if f.cutAt > 0 && f.ops >= f.cutAt {
		f.cut = true
		return ErrPowerCut
	}
	return nil
}

// alive fails from the cut on (for reads); f.mu is held.
func (f *FS) alive() error {
	if f.cut {
		return ErrPowerCut
	}
	return nil
}

func split(name string) []string {
	name = filepath.Clean("/" + name)
	if name == "/" {
		return nil
	}
	return strings.Split(name[1:], "/")
}

// lookup finds the directory holding name and name's last element; f.mu
// is held.
func (f *FS) lookup(op, name string) (*inode, string, error) {
	parts := split(name)
	if len(parts) == 0 {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	d := f.root
	for _, p := range parts[:len(parts)-1] {
		c, ok := d.entries[p]
		if !ok {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if !c.dir {
			return nil, "", &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
		}
		d = c
	}
	return d, parts[len(parts)-1], nil
}

// node finds name itself; f.mu is held.
func (f *FS) node(op, name string) (*inode, error) {
	if len(split(name)) == 0 {
		return f.root, nil
	}
	d, base, err := f.lookup(op, name)
	if err != nil {
		return nil, err
	}
	n, ok := d.entries[base]
	if !ok {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

// change records a change of directory d's entries; f.mu is held.
func (d *inode) change(cs ...dirChange) {
	for _, c := range cs {
		if c.node == nil {
			delete(d.entries, c.name)
		} else {
			d.entries[c.name] = c.node
		}
	}
	d.dpending = append(d.dpending, cs)
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.alive(); err != nil {
		return nil, pathErr("open", name, err)
	}
	d, base, err := f.lookup("open", name)
	if err != nil && len(split(name)) > 0 {
		return nil, err
	}
	var n *inode
	if d == nil {
		n = f.root
	} else {
		n = d.entries[base]
	}
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	switch {
	case n == nil && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case n == nil:
		if err := f.step(); err != nil {
			return nil, pathErr("open", name, err)
		}
		n = &inode{mode: perm &^ fs.ModeType}
		d.change(dirChange{base, n})
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, pathErr("open", name, fs.ErrExist)
	case n.dir && write:
		return nil, pathErr("open", name, syscall.EISDIR)
	case flag&os.O_TRUNC != 0 && write && len(n.data) > 0:
		if err := f.step(); err != nil {
			return nil, pathErr("open", name, err)
		}
		n.truncate(0)
	}
	return &file{fs: f, n: n, name: name, flag: flag}, nil
}

func (n *inode) truncate(size int64) {
	op := fileOp{trunc: true, size: size}
	n.data = apply(n.data, op)
	n.pending = append(n.pending, op)
}

func (f *FS) Stat(name string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.alive(); err != nil {
		return nil, pathErr("stat", name, err)
	}
	n, err := f.node("stat", name)
	if err != nil {
		return nil, err
	}
	return infoOf(filepath.Base(name), n), nil
}

func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.alive(); err != nil {
		return nil, pathErr("readdir", name, err)
	}
	n, err := f.node("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	var out []fs.DirEntry
	for k, c := range n.entries {
		out = append(out, fs.FileInfoToDirEntry(infoOf(k, c)))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mkdir(name, perm)
}

func (f *FS) mkdir(name string, perm fs.FileMode) error {
	if err := f.alive(); err != nil {
		return pathErr("mkdir", name, err)
	}
	d, base, err := f.lookup("mkdir", name)
	if err != nil {
		if len(split(name)) == 0 {
			return pathErr("mkdir", name, fs.ErrExist)
		}
		return err
	}
	if _, ok := d.entries[base]; ok {
		return pathErr("mkdir", name, fs.ErrExist)
	}
	if err := f.step(); err != nil {
		return pathErr("mkdir", name, err)
	}
	d.change(dirChange{base, newDir(perm)})
	return nil
}

func (f *FS) MkdirAll(name string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := "/"
	for _, p := range split(name) {
		path = filepath.Join(path, p)
		n, err := f.node("mkdir", path)
		if err == nil {
			if !n.dir {
				return pathErr("mkdir", path, syscall.ENOTDIR)
			}
			continue
		}
		if err := f.mkdir(path, perm); err != nil {
			return err
		}
	}
	return f.alive()
}

func (f *FS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	lerr := func(err error) error { return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err} }
	if err := f.alive(); err != nil {
		return lerr(err)
	}
	od, obase, err := f.lookup("rename", oldpath)
	if err != nil {
		return lerr(err)
	}
	n, ok := od.entries[obase]
	if !ok {
		return lerr(fs.ErrNotExist)
	}
	nd, nbase, err := f.lookup("rename", newpath)
	if err != nil {
		return lerr(err)
	}
	if t, ok := nd.entries[nbase]; ok {
		switch {
		case t == n:
			return nil
		case t.dir && !n.dir:
			return lerr(syscall.EISDIR)
		case !t.dir && n.dir:
			return lerr(syscall.ENOTDIR)
		case t.dir && len(t.entries) > 0:
			return lerr(syscall.ENOTEMPTY)
		}
	}
	if err := f.step(); err != nil {
		return lerr(err)
	}
	if od == nd {
		od.change(dirChange{nbase, n}, dirChange{obase, nil}) // one change: atomic
		return nil
	}
	nd.change(dirChange{nbase, n})
	od.change(dirChange{obase, nil})
	return nil
}

func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.remove(name)
}

func (f *FS) remove(name string) error {
	if err := f.alive(); err != nil {
		return pathErr("remove", name, err)
	}
	d, base, err := f.lookup("remove", name)
	if err != nil {
		return err
	}
	n, ok := d.entries[base]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.dir && len(n.entries) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	if err := f.step(); err != nil {
		return pathErr("remove", name, err)
	}
	d.change(dirChange{base, nil})
	return nil
}

func (f *FS) RemoveAll(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.alive(); err != nil {
		return pathErr("removeall", name, err)
	}
	_, err := f.node("removeall", name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.removeAllLocked(name)
}

func (f *FS) removeAllLocked(name string) error {
	n, err := f.node("removeall", name)
	if err != nil {
		return err
	}
	if n.dir {
		for _, k := range slices.Sorted(maps.Keys(n.entries)) {
			if err := f.removeAllLocked(filepath.Join(name, k)); err != nil {
				return err
			}
		}
	}
	return f.remove(name)
}

func (f *FS) SyncDir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.alive(); err != nil {
		return pathErr("sync", name, err)
	}
	n, err := f.node("sync", name)
	if err != nil {
		return err
	}
	if !n.dir {
		return pathErr("sync", name, syscall.ENOTDIR)
	}
	if err := f.step(); err != nil {
		return pathErr("sync", name, err)
	}
	n.dentries, n.dpending = cloneEntries(n.entries), nil
	return nil
}

// file is an open file.
type file struct {
	fs     *FS
	n      *inode
	name   string
	flag   int
	off    int64
	closed bool
}

func (h *file) Name() string { return h.name }

// check fails a closed file and, from the cut on, every call; h.fs.mu is
// held.
func (h *file) check(op string) error {
	if h.closed {
		return pathErr(op, h.name, os.ErrClosed)
	}
	return h.fs.alive()
}

func (h *file) Read(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	n, err := h.readAt("read", p, h.off)
	h.off += int64(n)
	return n, err
}

func (h *file) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return h.readAt("read", p, off)
}

func (h *file) readAt(op string, p []byte, off int64) (int, error) {
	if err := h.check(op); err != nil {
		return 0, pathErr(op, h.name, err)
	}
	if h.n.dir {
		return 0, pathErr(op, h.name, syscall.EISDIR)
	}
	if off < 0 {
		return 0, pathErr(op, h.name, fs.ErrInvalid)
	}
	if off >= int64(len(h.n.data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, h.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *file) Write(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	off := h.off
	if h.flag&os.O_APPEND != 0 {
		off = int64(len(h.n.data))
	}
	n, err := h.writeAt(p, off)
	h.off = off + int64(n)
	return n, err
}

func (h *file) WriteAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return h.writeAt(p, off)
}

func (h *file) writeAt(p []byte, off int64) (int, error) {
	if err := h.check("write"); err != nil {
		return 0, pathErr("write", h.name, err)
	}
	if h.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, pathErr("write", h.name, syscall.EBADF)
	}
	if off < 0 {
		return 0, pathErr("write", h.name, fs.ErrInvalid)
	}
	if err := h.fs.step(); err != nil {
		return 0, pathErr("write", h.name, err)
	}
	op := fileOp{off: off, data: slices.Clone(p)}
	h.n.data = apply(h.n.data, op)
	h.n.pending = append(h.n.pending, op)
	return len(p), nil
}

func (h *file) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("sync"); err != nil {
		return pathErr("sync", h.name, err)
	}
	if err := h.fs.step(); err != nil {
		return pathErr("sync", h.name, err)
	}
	if h.n.dir {
		h.n.dentries, h.n.dpending = cloneEntries(h.n.entries), nil
		return nil
	}
	h.n.durable, h.n.pending = slices.Clone(h.n.data), nil
	return nil
}

func (h *file) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("truncate"); err != nil {
		return pathErr("truncate", h.name, err)
	}
	if size < 0 || h.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return pathErr("truncate", h.name, fs.ErrInvalid)
	}
	if err := h.fs.step(); err != nil {
		return pathErr("truncate", h.name, err)
	}
	h.n.truncate(size)
	return nil
}

func (h *file) Stat() (fs.FileInfo, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("stat"); err != nil {
		return nil, pathErr("stat", h.name, err)
	}
	return infoOf(filepath.Base(h.name), h.n), nil
}

func (h *file) Chmod(mode fs.FileMode) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("chmod"); err != nil {
		return pathErr("chmod", h.name, err)
	}
	h.n.mode = h.n.mode&fs.ModeType | mode.Perm()
	return nil
}

func (h *file) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return pathErr("close", h.name, os.ErrClosed)
	}
	h.closed = true
	return nil
}

// info describes an inode as it is now.
type info struct {
	name string
	mode fs.FileMode
	size int64
}

func infoOf(name string, n *inode) info {
	return info{name: name, mode: n.mode, size: int64(len(n.data))}
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return nil }
