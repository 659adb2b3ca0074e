package remotelog

import (
	"bufio"
	"cmp"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ipfs/boxo/ipns"
	"golang.org/x/crypto/chacha20poly1305"
)

// A private log's message bodies are sealed: encrypted and authenticated
// with XChaCha20-Poly1305 under a read key. Everything else of the log (its
// pages, the MVDS message of each body, its id, computed over the sealed
// body) is as in any log, so whoever holds or relays the log verifies it
// without the key. docs/FORMAT.md describes the sealed body.
//
// A sealed body is a header, then the body cut into segments of SegmentSize
// bytes, each sealed on its own (STREAM): a segment's nonce carries its
// index and whether it is the last, so segments cannot be reordered,
// dropped or cut off without the reader noticing.
//
//	header  = "\xf5rl" version(1) epoch(uvarint) salt(16)
//	segment = ciphertext || tag(16)
//	nonce   = salt || index (7 bytes, big endian) || last (1 byte: 0 or 1)
//	aad     = group id
//
// The header needs no authentication of its own: its epoch picks the key
// and its salt is in every nonce, so a changed header opens nothing, and
// the epoch must be encoded in its shortest form.
const (
	sealMagic   = "\xf5rl" // 0xf5 never begins UTF-8 text
	sealVersion = 1
	saltSize    = 16
	tagSize     = chacha20poly1305.Overhead
	// SegmentSize is the plaintext bytes of a segment but the last.
	SegmentSize = 64 << 10
	// maxSealHeader bounds a header: magic, version, epoch, salt.
	maxSealHeader = len(sealMagic) + 1 + binary.MaxVarintLen64 + saltSize
)

var (
	// ErrPrivate: the log's bodies are sealed and this reader has no read
	// key for them (none for the log, or none for the epoch of a body).
	ErrPrivate = errors.New("private log")
	// ErrDecrypt: a sealed body does not open under the read key: it was
	// changed, cut short, or sealed under another key.
	ErrDecrypt = errors.New("sealed body does not open")
)

// ReadKey is one epoch's read key.
type ReadKey struct {
	Epoch uint64
	Key   [chacha20poly1305.KeySize]byte
}

// Keyring holds the read keys of one log, one per epoch; the writer seals
// with the newest. The zero Keyring holds none.
type Keyring struct {
	keys []ReadKey // ascending epochs

	mu sync.Mutex // held to add to ciphers
	// ciphers is the AEAD of each epoch, made once: read by the reader's
	// workers at once with no lock (a map is never changed once stored; a
	// new epoch stores a new one).
	ciphers atomic.Pointer[map[uint64]cipher.AEAD]
}

// NewKeyring returns a keyring with one new random key, epoch 0.
func NewKeyring() (*Keyring, error) {
	k := &Keyring{}
	if _, err := k.Rekey(); err != nil {
		return nil, err
	}
	return k, nil
}

// Rekey adds a new random key for the epoch after the newest and returns
// it: the writer seals with it from then on.
func (k *Keyring) Rekey() (ReadKey, error) {
	var rk ReadKey
	if n := len(k.keys); n > 0 {
		rk.Epoch = k.keys[n-1].Epoch + 1
	}
	if _, err := rand.Read(rk.Key[:]); err != nil {
		return ReadKey{}, fmt.Errorf("remotelog: make a read key: %w", err)
	}
	k.keys = append(k.keys, rk)
	return rk, nil
}

// Add adds keys (as a share link gives them), keeping the keys held; a key
// for an epoch held already must be the same key.
func (k *Keyring) Add(keys ...ReadKey) error {
	for _, rk := range keys {
		if old, ok := k.key(rk.Epoch); ok {
			if old != rk.Key {
				return fmt.Errorf("remotelog: read key of epoch %d differs from the one held", rk.Epoch)
			}
			continue
		}
		k.keys = append(k.keys, rk)
	}
	slices.SortFunc(k.keys, func(a, b ReadKey) int { return cmp.Compare(a.Epoch, b.Epoch) })
	return nil
}

// Keys are the keys held, oldest epoch first.
func (k *Keyring) Keys() []ReadKey { return slices.Clone(k.keys) }

// Current is the newest key, the one the writer seals with.
func (k *Keyring) Current() (ReadKey, bool) {
	if len(k.keys) == 0 {
		return ReadKey{}, false
	}
	return k.keys[len(k.keys)-1], true
}

// cipher is the AEAD of epoch's key.
func (k *Keyring) cipher(epoch uint64) (cipher.AEAD, bool) {
	if m := k.ciphers.Load(); m != nil {
		if a, ok := (*m)[epoch]; ok {
			return a, true
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.ciphers.Load()
	if old != nil {
		if a, ok := (*old)[epoch]; ok {
			return a, true
		}
	}
	key, ok := k.key(epoch)
	if !ok {
		return nil, false
	}
	a, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic(err) // a key is always KeySize bytes
	}
	m := map[uint64]cipher.AEAD{epoch: a}
	if old != nil {
		maps.Copy(m, *old)
	}
	k.ciphers.Store(&m)
	return a, true
}

func (k *Keyring) key(epoch uint64) ([32]byte, bool) {
	for _, rk := range k.keys {
		if rk.Epoch == epoch {
			return rk.Key, true
		}
	}
	return [32]byte{}, false
}

// SealedSize is the size of a sealed body of n bytes.
func SealedSize(epoch uint64, n uint64) uint64 {
	h := uint64(len(sealMagic) + 1 + uvarintLen(epoch) + saltSize)
	return h + n + (n/SegmentSize+1)*tagSize
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// IsSealed reports whether body begins as a sealed body does.
func IsSealed(body []byte) bool {
	return len(body) > len(sealMagic) && string(body[:len(sealMagic)]) == sealMagic && body[len(sealMagic)] == sealVersion
}

// segSealer seals the segments of one body.
type segSealer struct {
	aead interface {
		Seal(dst, nonce, plain, aad []byte) []byte
	}
	header []byte
	aad    []byte
	nonce  [chacha20poly1305.NonceSizeX]byte
}

func (k *Keyring) newSealer(group []byte) (*segSealer, error) {
	rk, ok := k.Current()
	if !ok {
		return nil, errors.New("remotelog: seal: the keyring holds no key")
	}
	a, _ := k.cipher(rk.Epoch)
	s := &segSealer{aead: a}
	s.header = append([]byte(sealMagic), sealVersion)
	s.header = binary.AppendUvarint(s.header, rk.Epoch)
	var salt [saltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("remotelog: seal: %w", err)
	}
	s.header = append(s.header, salt[:]...)
	copy(s.nonce[:], salt[:])
	s.aad = group
	return s, nil
}

// setNonce sets the nonce of segment i.
func setNonce(n *[chacha20poly1305.NonceSizeX]byte, i uint64, last bool) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	copy(n[saltSize:saltSize+7], b[1:])
	n[saltSize+7] = 0
	if last {
		n[saltSize+7] = 1
	}
}

func (s *segSealer) segment(dst []byte, i uint64, plain []byte, last bool) []byte {
	setNonce(&s.nonce, i, last)
	return s.aead.Seal(dst, s.nonce[:], plain, s.aad)
}

// Seal seals body, a message body of group, under the newest key.
func (k *Keyring) Seal(group, body []byte) ([]byte, error) {
	s, err := k.newSealer(group)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(s.header)+len(body)+(len(body)/SegmentSize+1)*tagSize)
	out = append(out, s.header...)
	for i := uint64(0); ; i++ {
		n := min(len(body), SegmentSize)
		last := len(body) < SegmentSize
		out = s.segment(out, i, body[:n], last)
		body = body[n:]
		if last {
			return out, nil
		}
	}
}

// SealAll seals each of bodies, message bodies of group, under the newest
// key. A nil keyring (a log that is not private) returns bodies as they
// are.
func (k *Keyring) SealAll(group []byte, bodies [][]byte) ([][]byte, error) {
	if k == nil {
		return bodies, nil
	}
	out := make([][]byte, len(bodies))
	for i, b := range bodies {
		var err error
		if out[i], err = k.Seal(group, b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SealTo streams the size bytes of r, a body of group, sealed under the
// newest key, to w.
func (k *Keyring) SealTo(w io.Writer, group []byte, r io.Reader, size uint64) error {
	s, err := k.newSealer(group)
	if err != nil {
		return err
	}
	if _, err := w.Write(s.header); err != nil {
		return err
	}
	buf := make([]byte, SegmentSize)
	out := make([]byte, 0, SegmentSize+tagSize)
	for i := uint64(0); ; i++ {
		n := min(size, SegmentSize)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return fmt.Errorf("read the body: %w", err)
		}
		size -= n
		last := n < SegmentSize
		if _, err := w.Write(s.segment(out[:0], i, buf[:n], last)); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// segOpener opens the segments of one sealed body.
type segOpener struct {
	aead interface {
		Open(dst, nonce, ct, aad []byte) ([]byte, error)
	}
	aad   []byte
	nonce [chacha20poly1305.NonceSizeX]byte
	epoch uint64
}

// errShortHeader: the bytes given end within the header.
var errShortHeader = fmt.Errorf("%w: the body is shorter than a header", ErrDecrypt)

// parseHeader reads the header at the start of b: the key epoch and the
// header's length.
func parseHeader(b []byte) (epoch uint64, n int, err error) {
	const fixed = len(sealMagic) + 1
	if len(b) < fixed {
		return 0, 0, errShortHeader
	}
	if !IsSealed(b) {
		if string(b[:len(sealMagic)]) == sealMagic {
			return 0, 0, fmt.Errorf("%w: sealed with format version %d, this rlog knows %d", ErrDecrypt, b[len(sealMagic)], sealVersion)
		}
		return 0, 0, fmt.Errorf("%w: the body is not sealed (a private log's bodies all are)", ErrDecrypt)
	}
	epoch, v := binary.Uvarint(b[fixed:])
	switch {
	case v == 0:
		return 0, 0, errShortHeader
	case v < 0 || v != uvarintLen(epoch):
		return 0, 0, fmt.Errorf("%w: a bad key epoch in the header", ErrDecrypt)
	case len(b) < fixed+v+saltSize:
		return 0, 0, errShortHeader
	}
	return epoch, fixed + v + saltSize, nil
}

// newOpener makes the opener of a body whose header is h.
func (k *Keyring) newOpener(h []byte, epoch uint64, group []byte) (*segOpener, error) {
	o := &segOpener{}
	return o, k.initOpener(o, h, epoch, group)
}

// initOpener sets o to open a body whose header is h.
func (k *Keyring) initOpener(o *segOpener, h []byte, epoch uint64, group []byte) error {
	a, ok := k.cipher(epoch)
	if !ok {
		advice := "ask the writer for a share link made after the key changed"
		if cur, ok := k.Current(); ok && cur.Epoch > epoch {
			// A link of the newest key alone (share --current): the older
			// messages need the older keys, or a start after them.
			advice = "this reader was given the keys of later messages only: ask the writer for a link with every key ('rlog share'), or read from after the key changed (--since)"
		}
		return fmt.Errorf("%w: no read key for epoch %d (this reader holds %s): %s", ErrPrivate, epoch, k.epochs(), advice)
	}
	*o = segOpener{aead: a, epoch: epoch, aad: group}
	copy(o.nonce[:], h[len(h)-saltSize:])
	return nil
}

// readHeader reads a sealed body's header from r and makes its opener.
func (k *Keyring) readHeader(r io.ByteReader, group []byte) (*segOpener, error) {
	h := make([]byte, 0, maxSealHeader)
	for {
		epoch, n, err := parseHeader(h)
		if err == nil {
			return k.newOpener(h[:n], epoch, group)
		}
		if err != errShortHeader || len(h) == maxSealHeader {
			return nil, err
		}
		b, rerr := r.ReadByte()
		if rerr != nil {
			return nil, err
		}
		h = append(h, b)
	}
}

func (k *Keyring) epochs() string {
	if len(k.keys) == 0 {
		return "no key"
	}
	var s []string
	for _, rk := range k.keys {
		s = append(s, strconv.FormatUint(rk.Epoch, 10))
	}
	if len(s) == 1 {
		return "epoch " + s[0]
	}
	return "epochs " + strings.Join(s, ", ")
}

func (o *segOpener) segment(dst []byte, i uint64, ct []byte, last bool) ([]byte, error) {
	setNonce(&o.nonce, i, last)
	out, err := o.aead.Open(dst, o.nonce[:], ct, o.aad)
	if err != nil {
		return nil, fmt.Errorf("%w: segment %d does not authenticate under the key of epoch %d (changed, cut short, or another key)", ErrDecrypt, i, o.epoch)
	}
	return out, nil
}

// Open opens a sealed body of group. It fails with ErrPrivate when the
// keyring has no key for the body's epoch and with ErrDecrypt when the
// body does not authenticate; it returns nothing of the body then.
func (k *Keyring) Open(group, sealed []byte) ([]byte, error) {
	return k.open(new(segOpener), nil, group, sealed)
}

// open opens sealed, a body of group, with o, into a new slice of arena
// when arena has room for it (arena is then extended over it), into a
// new buffer otherwise. It returns nothing of the body when it fails.
func (k *Keyring) open(o *segOpener, arena *[]byte, group, sealed []byte) ([]byte, error) {
	epoch, n, err := parseHeader(sealed)
	if err != nil {
		return nil, err
	}
	if err := k.initOpener(o, sealed[:n], epoch, group); err != nil {
		return nil, err
	}
	rest := sealed[n:]
	if len(rest) < tagSize {
		return nil, fmt.Errorf("%w: the body is cut short", ErrDecrypt)
	}
	size := len(rest) - tagSize*(len(rest)/(SegmentSize+tagSize)+1)
	inArena := arena != nil && cap(*arena)-len(*arena) >= size
	var out []byte
	if inArena {
		a := *arena
		out = a[len(a) : len(a) : len(a)+size]
	} else {
		out = make([]byte, 0, size)
	}
	for i := uint64(0); ; i++ {
		last := len(rest) <= SegmentSize+tagSize
		n := min(len(rest), SegmentSize+tagSize)
		if out, err = o.segment(out, i, rest[:n], last); err != nil {
			return nil, err
		}
		rest = rest[n:]
		if last {
			break
		}
	}
	if inArena && len(out) <= size { // opened within the arena, not moved out of it
		*arena = (*arena)[:len(*arena)+len(out)]
	}
	return out[:len(out):len(out)], nil
}

// bodyOpener opens the bodies of messages one after another with no
// allocation of its own for each: its opener is reused and the opened
// bodies of up to arenaBody bytes are cut from a shared arena (each its
// own slice, with no room to grow into the next), a new arena taken when
// it is full. The opened bodies of a page so share a few buffers, as the
// wire payloads they came from share the page's.
type bodyOpener struct {
	o     segOpener
	arena []byte
}

const (
	arenaSize = 32 << 10
	arenaBody = arenaSize / 8 // bodies larger are opened into their own buffer
)

// bodyOpeners are reused by the reader's workers, each holding one while
// it opens one body.
var bodyOpeners = sync.Pool{New: func() any { return new(bodyOpener) }}

// openBody opens sealed, a body of group, with a reused opener.
func (k *Keyring) openBody(group, sealed []byte) ([]byte, error) {
	bo := bodyOpeners.Get().(*bodyOpener)
	defer bodyOpeners.Put(bo)
	var arena *[]byte
	if len(sealed) <= arenaBody+maxSealHeader+tagSize {
		if cap(bo.arena)-len(bo.arena) < len(sealed) {
			bo.arena = make([]byte, 0, arenaSize)
		}
		arena = &bo.arena
	}
	b, err := k.open(&bo.o, arena, group, sealed)
	bo.o = segOpener{} // holds nothing of the body or the key once done
	return b, err
}

// OpenTo streams the opened body of the sealed body r, of group, to w,
// segment by segment. Each segment written has been authenticated; a body
// cut short fails with ErrDecrypt after the segments before the cut.
func (k *Keyring) OpenTo(w io.Writer, group []byte, r io.Reader) (uint64, error) {
	br := bufio.NewReaderSize(r, SegmentSize+tagSize+1)
	o, err := k.readHeader(br, group)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, SegmentSize+tagSize)
	out := make([]byte, 0, SegmentSize)
	var total uint64
	for i := uint64(0); ; i++ {
		n, err := io.ReadFull(br, buf)
		last := false
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			last = true
		case err != nil:
			return total, err
		default:
			if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
				last = true
			} else if perr != nil {
				return total, perr
			}
		}
		if n < tagSize {
			return total, fmt.Errorf("%w: the body is cut short", ErrDecrypt)
		}
		if out, err = o.segment(out[:0], i, buf[:n], last); err != nil {
			return total, err
		}
		if _, err := w.Write(out); err != nil {
			return total, err
		}
		total += uint64(len(out))
		if last {
			return total, nil
		}
	}
}

// OpenMessage opens the sealed body of m in place: Body, or for a large
// message BodyFile (a new file beside it holding the opened body, the
// sealed one removed) and BodySize. Wire stays the sealed wire payload.
func (k *Keyring) OpenMessage(m *Message) error {
	if m.BodyFile == "" {
		b, err := k.openBody(m.GroupID, m.Body)
		if err != nil {
			return fmt.Errorf("message %d: %w", m.Seq, err)
		}
		m.Body, m.BodySize = b, uint64(len(b))
		return nil
	}
	in, err := os.Open(m.BodyFile)
	if err != nil {
		return fmt.Errorf("message %d: %w", m.Seq, err)
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(m.BodyFile), ".rlog-open-*")
	if err != nil {
		return fmt.Errorf("message %d: %w", m.Seq, err)
	}
	n, err := k.OpenTo(out, m.GroupID, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return fmt.Errorf("message %d: %w", m.Seq, err)
	}
	os.Remove(m.BodyFile)
	m.BodyFile, m.BodySize = out.Name(), n
	return nil
}

// Opening wraps deliver so that it is given messages with their bodies
// opened under k. With a nil keyring it refuses a sealed body with
// ErrPrivate, so a reader without the key delivers nothing of a private log.
func Opening(k *Keyring, deliver func(Message) error) func(Message) error {
	return func(m Message) error {
		if m.opened {
			return deliver(m) // by OpenBodies
		}
		if k == nil {
			if sealedMessage(m) {
				return errNoKey(m.Seq)
			}
			return deliver(m)
		}
		if err := k.OpenMessage(&m); err != nil {
			return err
		}
		if m.BodyFile != "" {
			defer os.Remove(m.BodyFile) // unless the receiver moved it
		}
		return deliver(m)
	}
}

func errNoKey(seq uint64) error {
	return fmt.Errorf("%w: message %d is sealed and no read key for the log is held", ErrPrivate, seq)
}

// OpenBodies is a ReadOptions.Prepare that opens each message's body as
// Opening does, on the reader's workers ahead of delivery (the cost of
// opening then runs beside delivery, on other cores); with a nil keyring
// it refuses a sealed body with ErrPrivate. Opening delivers a message it
// opened as it is: a reader sets both.
//
//	opts.Prepare = remotelog.OpenBodies(k)
//	remotelog.CatchUp(ctx, src, name, cur, opts, remotelog.Opening(k, deliver))
func OpenBodies(k *Keyring) func(*Message) error {
	return func(m *Message) error {
		if k == nil {
			if sealedMessage(*m) {
				return errNoKey(m.Seq)
			}
			return nil
		}
		if err := k.OpenMessage(m); err != nil {
			return err
		}
		m.opened = true
		return nil
	}
}

// sealedMessage reports whether m's body begins as a sealed body.
func sealedMessage(m Message) bool {
	if m.BodyFile == "" {
		return IsSealed(m.Body)
	}
	f, err := os.Open(m.BodyFile)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [len(sealMagic) + 1]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false
	}
	return IsSealed(b[:])
}

// A share link gives a reader a log's name and read keys:
//
//	rlog://NAME#keys=EPOCH.KEY,EPOCH.KEY...
//
// KEY is the 32-byte key in unpadded base64url. The part after # is not
// sent by browsers or HTTP clients to any server.
const linkScheme = "rlog://"

// ShareLink is the link that gives keys of log name.
func ShareLink(name ipns.Name, keys []ReadKey) string {
	var parts []string
	for _, k := range keys {
		parts = append(parts, strconv.FormatUint(k.Epoch, 10)+"."+base64.RawURLEncoding.EncodeToString(k.Key[:]))
	}
	return linkScheme + name.String() + "#keys=" + strings.Join(parts, ",")
}

// IsLink reports whether s is a share link rather than a bare name.
func IsLink(s string) bool { return strings.HasPrefix(s, linkScheme) }

// ParseLink reads a share link.
func ParseLink(s string) (ipns.Name, []ReadKey, error) {
	fail := func(format string, args ...any) (ipns.Name, []ReadKey, error) {
		return ipns.Name{}, nil, fmt.Errorf("share link: "+format, args...)
	}
	rest, ok := strings.CutPrefix(s, linkScheme)
	if !ok {
		return fail("it does not start with %s", linkScheme)
	}
	nameText, frag, ok := strings.Cut(rest, "#")
	if !ok {
		return fail("no #keys=... after the name: the link is cut short")
	}
	name, err := ParseName(nameText)
	if err != nil {
		return fail("%q is not a log name: %w", nameText, err)
	}
	list, ok := strings.CutPrefix(frag, "keys=")
	if !ok || list == "" {
		return fail("no keys after # (want keys=EPOCH.KEY,...)")
	}
	var keys []ReadKey
	for _, p := range strings.Split(list, ",") {
		e, kt, ok := strings.Cut(p, ".")
		epoch, err := strconv.ParseUint(e, 10, 64)
		if !ok || err != nil {
			return fail("%q is not EPOCH.KEY", p)
		}
		kb, err := base64.RawURLEncoding.DecodeString(kt)
		if err != nil || len(kb) != chacha20poly1305.KeySize {
			return fail("the key of epoch %d is not 32 bytes of base64url: the link is damaged or cut short", epoch)
		}
		rk := ReadKey{Epoch: epoch}
		copy(rk.Key[:], kb)
		keys = append(keys, rk)
	}
	return name, keys, nil
}

// A repo keeps the keyring of each private log it writes or reads in
// keys/NAME.json (mode 0600).
type keyringFile struct {
	Keys []keyJSON `json:"keys"`
}

type keyJSON struct {
	Epoch uint64 `json:"epoch"`
	Key   string `json:"key"` // base64url
}

func keyringPath(dir string, name ipns.Name) string {
	return filepath.Join(dir, "keys", name.String()+".json")
}

// RemoveKeyring removes the keys the repo in dir holds for log name, if
// any.
func RemoveKeyring(dir string, name ipns.Name) error {
	if err := os.Remove(keyringPath(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remotelog: remove keys: %w", err)
	}
	return nil
}

// LoadKeyring reads the keyring the repo in dir holds for log name; nil
// when it holds none (the log is not private, or this repo has no key).
func LoadKeyring(dir string, name ipns.Name) (*Keyring, error) {
	b, err := os.ReadFile(keyringPath(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("remotelog: read keys: %w", err)
	}
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("remotelog: read keys %s: %w", keyringPath(dir, name), err)
	}
	k := &Keyring{}
	for _, j := range f.Keys {
		kb, err := base64.RawURLEncoding.DecodeString(j.Key)
		if err != nil || len(kb) != chacha20poly1305.KeySize {
			return nil, fmt.Errorf("remotelog: read keys %s: the key of epoch %d is damaged", keyringPath(dir, name), j.Epoch)
		}
		rk := ReadKey{Epoch: j.Epoch}
		copy(rk.Key[:], kb)
		if err := k.Add(rk); err != nil {
			return nil, err
		}
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("remotelog: read keys %s: it holds no key", keyringPath(dir, name))
	}
	return k, nil
}

// SaveKeyring writes k as the keyring of log name in the repo in dir,
// durably, readable by its owner only.
func SaveKeyring(dir string, name ipns.Name, k *Keyring) error {
	var f keyringFile
	for _, rk := range k.keys {
		f.Keys = append(f.Keys, keyJSON{Epoch: rk.Epoch, Key: base64.RawURLEncoding.EncodeToString(rk.Key[:])})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	p := keyringPath(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("remotelog: save keys: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".keys-*")
	if err != nil {
		return fmt.Errorf("remotelog: save keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(append(b, '\n'))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		return fmt.Errorf("remotelog: save keys: %w", err)
	}
	return nil
}

// SealFile seals the file at path, a body of group, into a new file in dir
// and returns its path; the caller appends it (Writer.AppendFile) and
// removes it. The body is streamed, never held in memory.
func (k *Keyring) SealFile(group []byte, path, dir string) (string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("remotelog: seal: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return "", fmt.Errorf("remotelog: seal: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("remotelog: seal: %s is not a regular file", path)
	}
	out, err := os.CreateTemp(dir, ".rlog-seal-*")
	if err != nil {
		return "", fmt.Errorf("remotelog: seal: %w", err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	err = k.SealTo(bw, group, in, uint64(st.Size()))
	if err == nil {
		err = bw.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("remotelog: seal %s: %w", path, err)
	}
	return out.Name(), nil
}

// HeldKeys opens bodies that name no log, as MVDS messages from peers
// arrive, with every key the repo in dir holds: its own private log's and
// those of the links it was given. A body that opens under none of them
// has the keys read again (a link given since, a rekey) before it is
// refused.
type HeldKeys struct {
	dir   string
	mu    sync.Mutex
	rings []*Keyring
}

// NewHeldKeys reads the keys the repo in dir holds.
func NewHeldKeys(dir string) (*HeldKeys, error) {
	h := &HeldKeys{dir: dir}
	return h, h.load()
}

func (h *HeldKeys) load() error {
	files, err := filepath.Glob(filepath.Join(h.dir, "keys", "*.json"))
	if err != nil {
		return fmt.Errorf("remotelog: read keys: %w", err)
	}
	var rings []*Keyring
	for _, f := range files {
		name, err := ParseName(strings.TrimSuffix(filepath.Base(f), ".json"))
		if err != nil {
			continue // not a keyring rlog wrote
		}
		k, err := LoadKeyring(h.dir, name)
		if err != nil {
			return err
		}
		rings = append(rings, k)
	}
	h.rings = rings
	return nil
}

// Open opens sealed, a body of group, with the held keyring whose key of
// its epoch authenticates it. It fails with ErrDecrypt when the body is
// not sealed as a body is, and with ErrPrivate when no held key opens it.
func (h *HeldKeys) Open(group, sealed []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, err := openWithAny(h.rings, group, sealed)
	if err == nil {
		return b, nil
	}
	if lerr := h.load(); lerr != nil {
		return nil, errors.Join(err, lerr)
	}
	return openWithAny(h.rings, group, sealed)
}

func openWithAny(rings []*Keyring, group, sealed []byte) ([]byte, error) {
	if _, _, err := parseHeader(sealed); err != nil {
		return nil, err
	}
	for _, k := range rings {
		if b, err := k.Open(group, sealed); err == nil {
			return b, nil
		}
	}
	// A key of another log authenticates nothing, as a changed body does
	// not: which it is cannot be told.
	return nil, fmt.Errorf("%w: none of the keys held (of %d logs) opens the body: a log whose keys are not held, or a changed body", ErrPrivate, len(rings))
}
