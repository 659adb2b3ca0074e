package namesys

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipfs/boxo/ipns"
)

// Memory is a Publisher and Resolver in memory, for tests. It stores what
// it is given, as a real name store would; readers verify.
type Memory struct {
	mu   sync.Mutex
	recs map[string][]byte
}

// NewMemory returns an empty memory name store.
func NewMemory() *Memory { return &Memory{recs: map[string][]byte{}} }

func (m *Memory) Publish(_ context.Context, name ipns.Name, raw []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[name.String()] = raw
	return nil
}

func (m *Memory) Resolve(_ context.Context, name ipns.Name) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	raw, ok := m.recs[name.String()]
	if !ok {
		return nil, fmt.Errorf("namesys: memory: resolve %s: %w", name, ErrNotFound)
	}
	return raw, nil
}
