package cas

import (
	"context"
	"fmt"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Memory is a Store in memory. It trusts the CIDs it is given, as any
// store does; readers verify. The zero value is not usable; use NewMemory.
type Memory struct {
	mu     sync.RWMutex
	blocks map[cid.Cid][]byte
}

// NewMemory returns an empty memory store.
func NewMemory() *Memory { return &Memory{blocks: map[cid.Cid][]byte{}} }

func (m *Memory) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, ok := m.blocks[c]
	if !ok {
		return nil, fmt.Errorf("cas: memory: get %s: %w", c, ErrNotFound)
	}
	return b, nil
}

func (m *Memory) Has(_ context.Context, c cid.Cid) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.blocks[c]
	return ok, nil
}

func (m *Memory) Put(_ context.Context, blks []blocks.Block) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range blks {
		m.blocks[b.Cid()] = b.RawData()
	}
	return nil
}

func (m *Memory) Delete(_ context.Context, c cid.Cid) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blocks, c)
	return nil
}

// Set stores b under c without checking, so tests can plant bad blocks.
func (m *Memory) Set(c cid.Cid, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks[c] = b
}

// Len is the number of blocks held.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.blocks)
}
