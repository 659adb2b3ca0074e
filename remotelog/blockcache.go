package remotelog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"

	"rlog/cas"
)

// DefaultBlockCache bounds a reader's block cache.
const DefaultBlockCache = 128 << 20

// BlockCache keeps the blocks a reader fetched and verified, one file each
// in a folder of its repo, so that a catch-up that fails or is killed part
// way does not fetch them again on its next run. It is bounded: when its
// files exceed Max bytes the least recently written are removed down to
// three quarters of it. A cached block is verified again when read; one
// that does not match its CID is removed and fetched. Forget, after a
// catch-up succeeded, removes the blocks it used: they are not needed again.
type BlockCache struct {
	Source
	dir string
	max int64

	mu   sync.Mutex
	size int64
	// files are the cache's files by CID, and order their CIDs oldest
	// written first, each with the write it names (a CID whose file was
	// removed or written again since stays in order until eviction passes
	// it, and is passed over): eviction reads no folder.
	files map[cid.Cid]cachedFile
	order []cachedRef
	gen   uint64
	used  map[cid.Cid]bool
}

type cachedFile struct {
	size int64
	gen  uint64 // the write that made it
}

type cachedRef struct {
	k   cid.Cid
	gen uint64
}

// addLocked notes block k's file of size bytes, written now. c.mu is held.
func (c *BlockCache) addLocked(k cid.Cid, size int64) {
	if old, ok := c.files[k]; ok {
		c.size -= old.size
	}
	c.gen++
	c.files[k] = cachedFile{size, c.gen}
	c.order = append(c.order, cachedRef{k, c.gen})
	c.size += size
}

// removeLocked removes block k's file. c.mu is held.
func (c *BlockCache) removeLocked(k cid.Cid) bool {
	f, ok := c.files[k]
	if !ok || os.Remove(c.path(k)) != nil {
		return false
	}
	delete(c.files, k)
	c.size -= f.size
	return true
}

// CacheBlocks reads src through the block cache in dir, bounded by max
// bytes (DefaultBlockCache when 0).
func CacheBlocks(src Source, dir string, max int64) (*BlockCache, error) {
	if max <= 0 {
		max = DefaultBlockCache
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("remotelog: block cache: %w", err)
	}
	c := &BlockCache{Source: src, dir: dir, max: max, files: map[cid.Cid]cachedFile{}, used: map[cid.Cid]bool{}}
	if err := c.load(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict()
	return c, nil
}

func (c *BlockCache) path(k cid.Cid) string { return filepath.Join(c.dir, k.String()) }

// load learns the files a cache left, oldest first; a temporary file of a
// write that was killed is removed, anything else not named by a CID is
// left alone.
func (c *BlockCache) load() error {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("remotelog: block cache: %w", err)
	}
	type file struct {
		k    cid.Cid
		size int64
		mod  int64
	}
	var found []file
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(c.dir, e.Name()))
			continue
		}
		k, err := cid.Decode(e.Name())
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		found = append(found, file{k, info.Size(), info.ModTime().UnixNano()})
	}
	slices.SortFunc(found, func(a, b file) int { return cmp.Compare(a.mod, b.mod) })
	for _, f := range found {
		c.addLocked(f.k, f.size)
	}
	return nil
}

// evict removes the oldest files while the cache is over its bound, down
// to three quarters of it. c.mu is held.
func (c *BlockCache) evict() {
	if c.size <= c.max {
		return
	}
	for len(c.order) > 0 && c.size > c.max*3/4 {
		r := c.order[0]
		c.order = c.order[1:]
		if f, ok := c.files[r.k]; ok && f.gen == r.gen {
			c.removeLocked(r.k)
		}
	}
	c.order = slices.Clip(c.order)
}

type fileGetter struct{ c *BlockCache }

func (g fileGetter) Get(_ context.Context, k cid.Cid) ([]byte, error) {
	b, err := os.ReadFile(g.c.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cas.ErrNotFound
	}
	return b, err
}

func (c *BlockCache) verifiesBlocks() {}

// Get returns block k from the cache, verified, else from the source,
// verified, keeping it.
func (c *BlockCache) Get(ctx context.Context, k cid.Cid) ([]byte, error) {
	c.mu.Lock()
	c.used[k] = true
	_, cached := c.files[k]
	c.mu.Unlock()
	if cached {
		b, err := cas.Verify(fileGetter{c}).Get(ctx, k)
		if err == nil {
			return b, nil
		}
		if errors.Is(err, cas.ErrHashMismatch) {
			c.drop(k)
		}
	}
	b, err := c.Source.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	if _, err := cas.Verify(staticGetter{k, b}).Get(ctx, k); err != nil {
		return nil, err // never cache what does not verify
	}
	c.put(k, b)
	return b, nil
}

// drop removes block k's file, which does not verify.
func (c *BlockCache) drop(k cid.Cid) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(k)
}

type staticGetter struct {
	k cid.Cid
	b []byte
}

func (s staticGetter) Get(context.Context, cid.Cid) ([]byte, error) { return s.b, nil }

// put writes a verified block: to a temporary file renamed in place, so
// that a process killed while writing leaves no torn block (one torn by
// a power loss fails verification and is fetched again).
func (c *BlockCache) put(k cid.Cid, b []byte) {
	tmp, err := os.CreateTemp(c.dir, ".tmp*")
	if err != nil {
		return // a cache that cannot write is a cache that does not help
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), c.path(k)) != nil {
		os.Remove(tmp.Name())
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(k, int64(len(b)))
	c.evict()
	c.trimLocked()
}

// Forget removes the blocks this cache served or kept since it was
// opened: after a catch-up that succeeded, none is needed again.
func (c *BlockCache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.used {
		c.removeLocked(k)
	}
	c.used = map[cid.Cid]bool{}
	c.trimLocked()
}

// trimLocked drops from order what names no file now, when that is most
// of it. c.mu is held.
func (c *BlockCache) trimLocked() {
	if len(c.order) > 2*len(c.files)+64 {
		c.order = slices.DeleteFunc(c.order, func(r cachedRef) bool { f, ok := c.files[r.k]; return !ok || f.gen != r.gen })
	}
}

// Resolve asks the source: records are never cached.
func (c *BlockCache) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	return c.Source.Resolve(ctx, name)
}
