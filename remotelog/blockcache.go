package remotelog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
	used map[cid.Cid]bool
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
	c := &BlockCache{Source: src, dir: dir, max: max, used: map[cid.Cid]bool{}}
	files, err := c.files()
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		c.size += f.size
	}
	return c, c.evict()
}

func (c *BlockCache) path(k cid.Cid) string { return filepath.Join(c.dir, k.String()) }

type cachedFile struct {
	path string
	size int64
	mod  int64
}

func (c *BlockCache) files() ([]cachedFile, error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("remotelog: block cache: %w", err)
	}
	var out []cachedFile
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		out = append(out, cachedFile{filepath.Join(c.dir, e.Name()), info.Size(), info.ModTime().UnixNano()})
	}
	return out, nil
}

// evict removes the oldest files while the cache is over its bound.
func (c *BlockCache) evict() error {
	c.mu.Lock()
	over := c.size > c.max
	c.mu.Unlock()
	if !over {
		return nil
	}
	files, err := c.files()
	if err != nil {
		return err
	}
	slices.SortFunc(files, func(a, b cachedFile) int { return int(min(max(a.mod-b.mod, -1), 1)) })
	var size int64
	for _, f := range files {
		size += f.size
	}
	for _, f := range files {
		if size <= c.max*3/4 {
			break
		}
		if err := os.Remove(f.path); err == nil {
			size -= f.size
		}
	}
	c.mu.Lock()
	c.size = size
	c.mu.Unlock()
	return nil
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
	c.mu.Unlock()
	b, err := cas.Verify(fileGetter{c}).Get(ctx, k)
	if err == nil {
		return b, nil
	}
	if errors.Is(err, cas.ErrHashMismatch) {
		os.Remove(c.path(k))
	}
	if b, err = c.Source.Get(ctx, k); err != nil {
		return nil, err
	}
	if _, err := cas.Verify(staticGetter{k, b}).Get(ctx, k); err != nil {
		return nil, err // never cache what does not verify
	}
	c.put(k, b)
	return b, nil
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
	c.size += int64(len(b))
	over := c.size > c.max
	c.mu.Unlock()
	if over {
		c.evict()
	}
}

// Forget removes the blocks this cache served or kept since it was
// opened: after a catch-up that succeeded, none is needed again.
func (c *BlockCache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.used {
		if info, err := os.Stat(c.path(k)); err == nil && os.Remove(c.path(k)) == nil {
			c.size -= info.Size()
		}
	}
	c.used = map[cid.Cid]bool{}
}

// Resolve asks the source: records are never cached.
func (c *BlockCache) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	return c.Source.Resolve(ctx, name)
}
