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
	// files are the cache's files by CID with their sizes, and order the
	// CIDs oldest written first (a CID whose file was removed since stays
	// in order until eviction passes it): eviction reads no folder.
	files map[cid.Cid]int64
	order []cid.Cid
	used  map[cid.Cid]bool
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
	c := &BlockCache{Source: src, dir: dir, max: max, files: map[cid.Cid]int64{}, used: map[cid.Cid]bool{}}
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
		c.files[f.k] = f.size
		c.order = append(c.order, f.k)
		c.size += f.size
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
		k := c.order[0]
		c.order = c.order[1:]
		if size, ok := c.files[k]; ok {
			os.Remove(c.path(k))
			delete(c.files, k)
			c.size -= size
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

// Get returns block k from the cache, verified, else from the source,
// keeping it.
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
	if size, ok := c.files[k]; ok {
		os.Remove(c.path(k))
		delete(c.files, k)
		c.size -= size
	}
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
	if _, ok := c.files[k]; !ok {
		c.order = append(c.order, k)
		c.size += int64(len(b))
	} else {
		c.size += int64(len(b)) - c.files[k]
	}
	c.files[k] = int64(len(b))
	c.evict()
}

// Forget removes the blocks this cache served or kept since it was
// opened: after a catch-up that succeeded, none is needed again.
func (c *BlockCache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.used {
		if size, ok := c.files[k]; ok && os.Remove(c.path(k)) == nil {
			delete(c.files, k)
			c.size -= size
		}
	}
	c.used = map[cid.Cid]bool{}
	// What is left in order of the removed is passed over by eviction;
	// drop it now when most of order is gone.
	if len(c.order) > 2*len(c.files) {
		c.order = slices.DeleteFunc(c.order, func(k cid.Cid) bool { _, ok := c.files[k]; return !ok })
	}
}

// Resolve asks the source: records are never cached.
func (c *BlockCache) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	return c.Source.Resolve(ctx, name)
}
