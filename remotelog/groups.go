package remotelog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/ipfs/boxo/ipns"

	"rlog/internal/atomicfile"
	"rlog/mvds"
)

// Group is a group conversation kept in a repo: its name (whose SHA-256 is
// its MVDS group id), the names of its members' logs, and the heads of its
// causal DAG this repo has seen (what the next message written in the
// group names as its parents).
type Group struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	Heads   []string `json:"heads,omitempty"` // hex message ids
}

// ID is the group's MVDS group id: the SHA-256 of its name.
func (g Group) ID() []byte {
	h := sha256.Sum256([]byte(g.Name))
	return h[:]
}

// MemberNames parses the members' log names.
func (g Group) MemberNames() ([]ipns.Name, error) {
	out := make([]ipns.Name, len(g.Members))
	for i, s := range g.Members {
		n, err := ParseName(s)
		if err != nil {
			return nil, fmt.Errorf("remotelog: group %q: member %q: %w", g.Name, s, err)
		}
		out[i] = n
	}
	return out, nil
}

// HeadIDs parses the group's heads.
func (g Group) HeadIDs() ([]mvds.MessageID, error) {
	out := make([]mvds.MessageID, len(g.Heads))
	for i, s := range g.Heads {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(out[i]) {
			return nil, fmt.Errorf("remotelog: group %q: head %q is not a 64-digit hex message id", g.Name, s)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// GroupStore keeps a repo's groups in one file, replaced atomically.
type GroupStore struct{ dir string }

// Groups is the group store of the repo in dir.
func Groups(dir string) GroupStore { return GroupStore{dir} }

func (s GroupStore) path() string { return filepath.Join(s.dir, "groups.json") }

// Cursors is where the reader of group name keeps how far it has read each
// member's log: apart from fetch's own cursors, so reading a member's log
// alone does not skip messages of the group.
func (s GroupStore) Cursors(name string) CursorStore {
	h := sha256.Sum256([]byte(name))
	return CursorStore{filepath.Join(s.dir, "cursors", "group", hex.EncodeToString(h[:8]))}
}

// List returns the groups, by name.
func (s GroupStore) List() ([]Group, error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("remotelog: read groups: %w", err)
	}
	var f struct {
		Groups []Group `json:"groups"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("remotelog: read groups %s: %w", s.path(), err)
	}
	return f.Groups, nil
}

// Get returns group name; ErrNoGroup when the repo has none of that name.
func (s GroupStore) Get(name string) (Group, error) {
	gs, err := s.List()
	if err != nil {
		return Group{}, err
	}
	for _, g := range gs {
		if g.Name == name {
			return g, nil
		}
	}
	return Group{}, fmt.Errorf("%w: %q (see 'rlog group ls')", ErrNoGroup, name)
}

// ErrGroupExists: the repo has a group of that name already.
var ErrGroupExists = errors.New("remotelog: create group: the repo has the group already")

// ErrNoGroup: the repo has no group of that name.
var ErrNoGroup = errors.New("remotelog: no such group")

func (s GroupStore) save(gs []Group) error {
	sort.Slice(gs, func(i, j int) bool { return gs[i].Name < gs[j].Name })
	b, _ := json.MarshalIndent(struct {
		Groups []Group `json:"groups"`
	}{gs}, "", "  ")
	if err := atomicfile.Write(s.path(), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("remotelog: save groups: %w", err)
	}
	return nil
}

// locked runs f while this process holds the store's lock: a change is a
// read, an edit and a write of groups.json, and two processes changing it
// at once (two 'rlog group add', a follower saving heads) must not lose
// either change. The lock is a flock on groups.json.lock, released when f
// returns (or the process ends).
func (s GroupStore) locked(f func() error) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("remotelog: lock groups: %w", err)
	}
	lf, err := os.OpenFile(s.path()+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("remotelog: lock groups: %w", err)
	}
	defer lf.Close()
	for {
		err = syscall.Flock(int(lf.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("remotelog: lock groups: %w", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// Create adds an empty group name.
func (s GroupStore) Create(name string) error {
	if name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\n") {
		return fmt.Errorf("remotelog: create group: %q is not a group name (a non-empty line of text)", name)
	}
	return s.locked(func() error { return s.create(name) })
}

func (s GroupStore) create(name string) error {
	gs, err := s.List()
	if err != nil {
		return err
	}
	for _, g := range gs {
		if g.Name == name {
			return fmt.Errorf("%w: %q", ErrGroupExists, name)
		}
	}
	return s.save(append(gs, Group{Name: name, Members: []string{}}))
}

// Update applies f to group name and saves it, under the store's lock.
func (s GroupStore) Update(name string, f func(*Group) error) error {
	return s.locked(func() error { return s.update(name, f) })
}

func (s GroupStore) update(name string, f func(*Group) error) error {
	gs, err := s.List()
	if err != nil {
		return err
	}
	for i := range gs {
		if gs[i].Name == name {
			if err := f(&gs[i]); err != nil {
				return err
			}
			return s.save(gs)
		}
	}
	return fmt.Errorf("%w: %q (see 'rlog group ls')", ErrNoGroup, name)
}

// AddMember adds log member to group name; adding one twice is an error.
func (s GroupStore) AddMember(name string, member ipns.Name) error {
	return s.Update(name, func(g *Group) error {
		for _, m := range g.Members {
			if m == member.String() {
				return fmt.Errorf("remotelog: group %q has member %s already", name, member)
			}
		}
		g.Members = append(g.Members, member.String())
		return nil
	})
}

// RemoveMember takes log member out of group name.
func (s GroupStore) RemoveMember(name string, member ipns.Name) error {
	return s.Update(name, func(g *Group) error {
		for i, m := range g.Members {
			if m == member.String() {
				g.Members = append(g.Members[:i], g.Members[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("remotelog: group %q has no member %s", name, member)
	})
}

// Remove deletes group name and its cursors. Its messages stay in the logs.
func (s GroupStore) Remove(name string) error {
	return s.locked(func() error { return s.remove(name) })
}

func (s GroupStore) remove(name string) error {
	gs, err := s.List()
	if err != nil {
		return err
	}
	for i := range gs {
		if gs[i].Name == name {
			if err := s.save(append(gs[:i], gs[i+1:]...)); err != nil {
				return err
			}
			return os.RemoveAll(s.Cursors(name).dir)
		}
	}
	return fmt.Errorf("%w: %q (see 'rlog group ls')", ErrNoGroup, name)
}

// Heads tracks the heads of a group's causal DAG: the messages seen that no
// other seen message follows (names as a parent, or follows in its author's
// log). It is pure.
type Heads struct {
	set  map[mvds.MessageID]struct{}
	last map[string]mvds.MessageID
}

// NewHeads starts from the heads given (as saved in a Group).
func NewHeads(ids []mvds.MessageID) *Heads {
	h := &Heads{set: map[mvds.MessageID]struct{}{}, last: map[string]mvds.MessageID{}}
	for _, id := range ids {
		h.set[id] = struct{}{}
	}
	return h
}

// Observe records message id of author's log naming parents.
func (h *Heads) Observe(author string, id mvds.MessageID, parents []mvds.MessageID) {
	for _, p := range parents {
		delete(h.set, p)
	}
	if prev, ok := h.last[author]; ok {
		delete(h.set, prev)
	}
	h.last[author] = id
	h.set[id] = struct{}{}
}

// List returns the heads, by id.
func (h *Heads) List() []mvds.MessageID {
	out := make([]mvds.MessageID, 0, len(h.set))
	for id := range h.set {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return lessID(out[i], out[j]) })
	return out
}

// Hex returns the heads as hex, by id, for Group.Heads.
func (h *Heads) Hex() []string {
	ids := h.List()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
