package remotelog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"rlog/cas"
	"rlog/internal/atomicfile"
	"rlog/namesys"
	"rlog/pager"
)

// A repo is a directory holding one writer's log and a reader's cursors:
//
//	config.json  Config
//	key          Ed25519 private key (libp2p protobuf), mode 0600
//	name         the log's name (k51...), public: readers need nothing else
//	blocks/      the embedded block store (LevelDB, Snappy)
//	log/         the journal of appended messages; after a publish into
//	             blocks/, only those not on a sealed page (docs/STORAGE.md)
//	pages        index of sealed pages
//	state.json   what was last published
//	ipns/        signed records, one file per name (and the other record of a fork)
//	cursors/     how far this repo has read other logs
//	lock         held by the process that writes, which writes its pid and command in it

// Config is a repo's configuration.
type Config struct {
	Version  int          `json:"version"`
	Preset   string       `json:"preset"`
	Policy   pager.Policy `json:"policy"`
	Lifetime Duration     `json:"lifetime"`
	TTL      Duration     `json:"ttl"`
	Addrs    []string     `json:"addrs,omitempty"`
	Group    string       `json:"group"` // default group, hex
	// Backend is where the log is published: "" (the embedded store) or
	// "kubo" (a Kubo daemon, at KuboAPI or found by the caller).
	Backend string `json:"backend,omitempty"`
	KuboAPI string `json:"kubo_api,omitempty"`
	// Peers are the MVDS peers a node syncs with (rlog peer add), kept
	// across restarts.
	Peers []PeerConfig `json:"peers,omitempty"`
}

// Backend is where a writer publishes: blocks and records.
type Backend struct {
	Store cas.Store
	Names interface {
		namesys.Publisher
		namesys.Resolver
	}
}

// Duration is a time.Duration written as text ("8760h0m0s").
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// DefaultConfig is the configuration of a new repo with a preset.
func DefaultConfig(preset string) (Config, error) {
	pol, err := pager.Preset(preset)
	if err != nil {
		return Config{}, err
	}
	return Config{Version: 1, Preset: preset, Policy: pol, Lifetime: Duration(DefaultLifetime), TTL: Duration(DefaultTTL)}, nil
}

// Init creates a repo in dir with a new Ed25519 key and returns its name.
// It refuses a directory that already holds a repo.
func Init(dir string, cfg Config) (ipns.Name, error) {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return ipns.Name{}, fmt.Errorf("remotelog: init %s: a repo already exists there", dir)
	}
	if err := cfg.Policy.Validate(); err != nil {
		return ipns.Name{}, fmt.Errorf("remotelog: init %s: %w", dir, err)
	}
	sk, pk, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return ipns.Name{}, fmt.Errorf("remotelog: init: %w", err)
	}
	name, err := namesys.NameOf(pk)
	if err != nil {
		return ipns.Name{}, err
	}
	if cfg.Group == "" {
		g := sha256.Sum256(append([]byte("rlog default group "), name.RoutingKey()...))
		cfg.Group = hex.EncodeToString(g[:])
	}
	keyBytes, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return ipns.Name{}, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "log"), filepath.Join(dir, "ipns"), filepath.Join(dir, "cursors")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return ipns.Name{}, fmt.Errorf("remotelog: init: %w", err)
		}
	}
	if err := atomicfile.Write(filepath.Join(dir, "key"), keyBytes, 0o600); err != nil {
		return ipns.Name{}, fmt.Errorf("remotelog: init: write key: %w", err)
	}
	if err := writeName(dir, name); err != nil {
		return ipns.Name{}, fmt.Errorf("remotelog: init: %w", err)
	}
	cb, _ := json.MarshalIndent(cfg, "", "  ")
	// config.json last: its presence marks a complete repo.
	if err := atomicfile.Write(filepath.Join(dir, "config.json"), append(cb, '\n'), 0o644); err != nil {
		return ipns.Name{}, fmt.Errorf("remotelog: init: write config: %w", err)
	}
	return name, nil
}

// LoadConfig reads the configuration of the repo in dir.
func LoadConfig(dir string) (Config, error) {
	var cfg Config
	cb, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, fmt.Errorf("remotelog: open %s: %w (create one with `rlog init`)", dir, ErrNoRepo)
	}
	if err != nil {
		return cfg, fmt.Errorf("remotelog: open %s: %w", dir, err)
	}
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return cfg, fmt.Errorf("remotelog: open %s: config.json: %w", dir, err)
	}
	if cfg.Version != 1 {
		return cfg, fmt.Errorf("remotelog: open %s: config version %d, this rlog knows 1", dir, cfg.Version)
	}
	return cfg, nil
}

// DefaultGroup is the group messages go to unless told otherwise.
func (c Config) DefaultGroup() []byte {
	g, _ := hex.DecodeString(c.Group)
	return g
}

// ReadName reads the name of the repo in dir from its public name file
// (from its key in a repo made before there was one), without opening (or
// waiting for) its store.
func ReadName(dir string) (ipns.Name, error) {
	if _, err := LoadConfig(dir); err != nil {
		return ipns.Name{}, err
	}
	name, err := readName(dir)
	if err != nil {
		return ipns.Name{}, fmt.Errorf("remotelog: open %s: %w", dir, err)
	}
	return name, nil
}

// nameFile holds a repo's name, readable by anyone who may read the repo:
// a reader of the folder (another user, a copy synced without the key)
// needs the name, never the private key.
const nameFile = "name"

func writeName(dir string, name ipns.Name) error {
	if err := atomicfile.Write(filepath.Join(dir, nameFile), []byte(name.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", nameFile, err)
	}
	return nil
}

// readName reads the name file; in a repo made before there was one, it
// derives the name from the key, and says what is missing when it cannot.
func readName(dir string) (ipns.Name, error) {
	b, err := os.ReadFile(filepath.Join(dir, nameFile))
	if err == nil {
		name, err := ipns.NameFromString(strings.TrimSpace(string(b)))
		if err != nil {
			return ipns.Name{}, fmt.Errorf("%s: %w", nameFile, err)
		}
		return name, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return ipns.Name{}, fmt.Errorf("read %s: %w", nameFile, err)
	}
	sk, kerr := readKey(dir)
	if kerr != nil {
		return ipns.Name{}, fmt.Errorf("no %s file (a repo made by an older rlog: any command its writer runs in it writes one) and %w", nameFile, kerr)
	}
	return namesys.NameOf(sk.GetPublic())
}

func readKey(dir string) (crypto.PrivKey, error) {
	kb, err := os.ReadFile(filepath.Join(dir, "key"))
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	sk, err := crypto.UnmarshalPrivateKey(kb)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return sk, nil
}

// ErrNoRepo: the directory holds no repo.
var ErrNoRepo = errors.New("no rlog repo")

// ErrLocked: another process writes to the repo.
var ErrLocked = errors.New("repo is in use by another rlog process")

// Repo is an open repo.
type Repo struct {
	Dir      string
	Config   Config
	key      crypto.PrivKey
	name     ipns.Name
	store    *cas.Embedded
	names    *namesys.Dir
	lock     *os.File
	readOnly bool
	borrowed bool // a node's repo lent to a command it runs: Close leaves it open
}

// ParseName reads a log's name as users write it: k51... (an IPNS name
// of an Ed25519 key, base36), with or without a leading /ipns/.
func ParseName(s string) (ipns.Name, error) {
	n, err := ipns.NameFromString(strings.TrimPrefix(s, "/ipns/"))
	if err != nil {
		return ipns.Name{}, fmt.Errorf("remotelog: %q is not a log name (an IPNS name such as k51...): %w", s, err)
	}
	return n, nil
}

// Open opens the repo in dir for writing: it takes the repo lock, and
// fails at once with ErrLocked while another process holds it.
func Open(dir string) (*Repo, error) { return open(context.Background(), dir, false, OpenOptions{}) }

// OpenWith is Open that waits for the repo lock as opts say, until ctx
// ends. When it gives up, its error is a *LockedError naming the holder.
func OpenWith(ctx context.Context, dir string, opts OpenOptions) (*Repo, error) {
	return open(ctx, dir, false, opts)
}

// OpenReadOnly opens the repo in dir without writing anything to it (a
// synced folder, a USB stick): a reader's source.
func OpenReadOnly(dir string) (*Repo, error) {
	return open(context.Background(), dir, true, OpenOptions{})
}

func open(ctx context.Context, dir string, readOnly bool, opts OpenOptions) (*Repo, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	r := &Repo{Dir: dir, Config: cfg, readOnly: readOnly}
	if readOnly {
		// A reader reads public files only: no key.
		if r.name, err = readName(dir); err != nil {
			return nil, fmt.Errorf("remotelog: open %s: %w", dir, err)
		}
	} else {
		if r.lock, err = lockDir(ctx, dir, opts); err != nil {
			return nil, err
		}
		if r.key, err = readKey(dir); err != nil {
			r.Close()
			return nil, fmt.Errorf("remotelog: open %s: %w", dir, err)
		}
		if r.name, err = namesys.NameOf(r.key.GetPublic()); err != nil {
			r.Close()
			return nil, err
		}
		if err := r.checkName(); err != nil {
			r.Close()
			return nil, fmt.Errorf("remotelog: open %s: %w", dir, err)
		}
	}
	blocksDir := filepath.Join(dir, "blocks")
	if _, err := os.Stat(blocksDir); readOnly && errors.Is(err, fs.ErrNotExist) {
		// nothing published yet: an empty store
	} else if r.store, err = cas.OpenEmbedded(blocksDir, readOnly); err != nil {
		r.Close()
		return nil, fmt.Errorf("remotelog: open %s: %w", dir, err)
	}
	r.names = namesys.NewDir(filepath.Join(dir, "ipns"), readOnly)
	return r, nil
}

// checkName makes sure the public name file says the key's name: a repo
// made before there was one gets it now.
func (r *Repo) checkName() error {
	b, err := os.ReadFile(filepath.Join(r.Dir, nameFile))
	if errors.Is(err, fs.ErrNotExist) {
		return writeName(r.Dir, r.name)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", nameFile, err)
	}
	if got := strings.TrimSpace(string(b)); got != r.name.String() {
		return fmt.Errorf("%s says %s but the key's name is %s", nameFile, got, r.name)
	}
	return nil
}

// Key is the repo's private key: it signs the log's records and is the
// node's libp2p identity in MVDS sync; nil in a repo opened read-only.
func (r *Repo) Key() crypto.PrivKey { return r.key }

// Name is the IPNS name of the repo's own log.
func (r *Repo) Name() ipns.Name { return r.name }

// Store is the repo's block store (nil for a read-only repo that has never
// published).
func (r *Repo) Store() cas.Store {
	if r.store == nil {
		return emptyStore{}
	}
	return r.store
}

// Names is the repo's record store.
func (r *Repo) Names() *namesys.Dir { return r.names }

// Get and Resolve make a Repo a Source.
func (r *Repo) Get(ctx context.Context, c cid.Cid) ([]byte, error) { return r.Store().Get(ctx, c) }

// Local says whether the repo's blocks are on this machine: its embedded
// store, not a Kubo daemon.
func (r *Repo) Local() bool {
	_, ok := r.Store().(*cas.Embedded)
	return ok
}

func (r *Repo) Resolve(ctx context.Context, name ipns.Name) ([]byte, error) {
	return r.names.Resolve(ctx, name)
}

// Writer opens the repo's own log for appending and publishing to b, or to
// the embedded store when b is nil.
func (r *Repo) Writer(b *Backend, now func() time.Time) (*Writer, error) {
	if r.readOnly {
		return nil, fmt.Errorf("remotelog: %s is open read-only", r.Dir)
	}
	if b == nil {
		b = &Backend{Store: r.store, Names: r.names}
	}
	return OpenWriter(WriterConfig{
		Dir: r.Dir, Key: r.key, Store: b.Store, Local: r.store, Publisher: b.Names, Resolver: b.Names,
		Policy: r.Config.Policy, Lifetime: time.Duration(r.Config.Lifetime), TTL: time.Duration(r.Config.TTL),
		Addrs: r.Config.Addrs, Now: now,
	})
}

// DefaultGroup is the group messages go to unless told otherwise.
func (r *Repo) DefaultGroup() []byte { return r.Config.DefaultGroup() }

// Cursor is how far this repo has read log name.
func (r *Repo) Cursor(name ipns.Name) (Cursor, error) { return Cursors(r.Dir).Get(name) }

// SaveCursor durably records how far this repo has read log name.
func (r *Repo) SaveCursor(name ipns.Name, c Cursor) error { return Cursors(r.Dir).Save(name, c) }

// CursorStore keeps a repo's cursors, one file per log, each replaced
// atomically. It takes no lock: a follower using it never keeps other rlog
// commands out of the repo.
type CursorStore struct{ dir string }

// Cursors is the cursor store of the repo in dir.
func Cursors(dir string) CursorStore { return CursorStore{filepath.Join(dir, "cursors")} }

// SyncCursors is where `rlog sync --from` keeps how far it has read its
// peers' logs.
func SyncCursors(dir string) CursorStore { return CursorStore{filepath.Join(dir, "cursors", "sync")} }

// KeepCursors is where `rlog keep` keeps its own cursors, apart from the
// ones fetch and follow use.
func KeepCursors(dir string) CursorStore { return CursorStore{filepath.Join(dir, "cursors", "keep")} }

func (s CursorStore) path(name ipns.Name) string { return filepath.Join(s.dir, name.String()+".json") }

// Get is how far the repo has read log name; the zero Cursor if never.
func (s CursorStore) Get(name ipns.Name) (Cursor, error) {
	var c Cursor
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return s.withProgress(name, c)
	}
	if err != nil {
		return c, fmt.Errorf("remotelog: read cursor: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("remotelog: read cursor %s: %w", s.path(name), err)
	}
	return s.withProgress(name, c)
}

// Save durably records c for log name.
func (s CursorStore) Save(name ipns.Name, c Cursor) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("remotelog: save cursor: %w", err)
	}
	b, _ := json.Marshal(c)
	if err := atomicfile.Write(s.path(name), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("remotelog: save cursor: %w", err)
	}
	return s.dropProgress(name)
}

// SaveConfig replaces the repo's configuration with cfg, atomically.
func (r *Repo) SaveConfig(cfg Config) error {
	if r.readOnly || r.borrowed {
		return fmt.Errorf("remotelog: save config: %s is not open for writing here", r.Dir)
	}
	cb, _ := json.MarshalIndent(cfg, "", "  ")
	if err := atomicfile.Write(filepath.Join(r.Dir, "config.json"), append(cb, '\n'), 0o644); err != nil {
		return fmt.Errorf("remotelog: save config: %w", err)
	}
	r.Config = cfg
	return nil
}

// Close releases the store and the lock.
func (r *Repo) Close() error {
	if r.borrowed {
		return nil
	}
	var errs []error
	if r.store != nil {
		errs = append(errs, r.store.Close())
	}
	if r.lock != nil {
		errs = append(errs, unlock(r.lock))
	}
	return errors.Join(errs...)
}
