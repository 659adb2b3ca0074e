package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ipfs/boxo/ipns"
	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"rlog/remotelog"
)

// Private logs: the repo keeps the read keys of each private log it writes
// or reads in keys/NAME.json (mode 0600). Its own log is private when it
// holds keys for its own name.

func (a *app) shareCmd() *cobra.Command {
	var current, asJSON, qr, noQR bool
	cmd := &cobra.Command{
		Use:   "share",
		Short: "Print a link that lets a reader read this repo's private log",
		Long: `Print a share link for this repo's private log ('rlog init --private'): its name and
the read keys, as rlog://NAME#keys=EPOCH.KEY,... . A reader runs 'rlog fetch LINK' or
'rlog follow LINK --from SOURCE'; its repo keeps the keys, so later it may give the
bare name. Whoever has the link reads the log: send it as you would a password.

The link carries every key the log was sealed under, so a new reader reads the whole
log. --current gives only the newest key (the one since the last 'rlog rekey'): its
reader reads the messages appended since that rekey, and is told which key it lacks
for older ones.

On a terminal the link is followed by a QR code of it, for a phone's camera (--no-qr:
none; --qr: also when the output is not a terminal). --json prints none.`,
		Example: `  rlog share
  rlog share --current       # only what was appended since the last rekey
  rlog share --qr | less     # the QR code, paged
  rlog fetch "$(rlog --repo ~/writer share)" --from ~/writer --repo ~/reader`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if qr && (noQR || asJSON) {
				return usagef("--qr prints the QR code: give it without --no-qr and --json")
			}
			dir, name, k, err := a.ownKeys()
			if err != nil {
				return err
			}
			keys := k.Keys()
			if current {
				cur, _ := k.Current()
				keys = []remotelog.ReadKey{cur}
			}
			link := remotelog.ShareLink(name, keys)
			if asJSON {
				cur, _ := k.Current()
				return writeJSONLine(a.stdout, map[string]any{"link": link, "name": name.String(), "epochs": len(keys), "current_epoch": cur.Epoch})
			}
			fmt.Fprintln(a.stdout, link)
			if qr || (!noQR && isTerminal(a.stdout)) {
				art, err := qrArt(link)
				if err != nil {
					fmt.Fprintf(a.stderr, "no QR code: %v\n", err)
				} else {
					fmt.Fprint(a.stdout, art)
				}
			}
			fmt.Fprintf(a.stderr, "anyone with this link reads the log of %s (%s); keys in %s\n", dir, plural(len(keys), "read key"), "keys/"+name.String()+".json")
			return nil
		},
	}
	cmd.Flags().BoolVar(&current, "current", false, "give only the newest read key")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {link, name, epochs, current_epoch}")
	cmd.Flags().BoolVar(&qr, "qr", false, "print the QR code of the link also when the output is not a terminal")
	cmd.Flags().BoolVar(&noQR, "no-qr", false, "print no QR code, also on a terminal")
	return cmd
}

// qrLevel is the QR codes' error correction: Medium, as most camera apps
// read a code on a screen at it.
const qrLevel = qrcode.Medium

// qrArt is the QR code of link drawn with half blocks, two modules a
// character high, light modules drawn (a terminal's text is light on
// dark), its quiet zone included.
func qrArt(link string) (string, error) {
	q, err := qrcode.New(link, qrLevel)
	if err != nil {
		return "", fmt.Errorf("the link does not fit a QR code (%d bytes): %w", len(link), err)
	}
	return q.ToSmallString(false), nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) rekeyCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rekey",
		Short: "Make a new read key for everything appended from now on",
		Long: `Make a new read key for this repo's private log: messages appended from now on are
sealed under it; those appended before stay under the keys they were sealed with.
Readers who get a new share link ('rlog share') read across the change; a reader who
does not (the one you remove) keeps reading what it could read before and nothing
after. Messages already published stay readable to whoever holds their key: a rekey
protects what comes next, not what was given.`,
		Example: `  rlog rekey && rlog share   # the link to give the readers who stay`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, name, k, err := a.ownKeys()
			if err != nil {
				return err
			}
			rk, err := k.Rekey()
			if err != nil {
				return err
			}
			if err := remotelog.SaveKeyring(dir, name, k); err != nil {
				return err
			}
			if asJSON {
				return writeJSONLine(a.stdout, map[string]any{"epoch": rk.Epoch})
			}
			fmt.Fprintf(a.stdout, "read key epoch %d\n", rk.Epoch)
			fmt.Fprintln(a.stderr, "messages appended from now on are sealed under the new key; give the readers who stay a new link: rlog share")
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {epoch}")
	return cmd
}

// ownKeys reads the keyring of the repo's own log, refusing a log that is
// not private.
func (a *app) ownKeys() (string, ipns.Name, *remotelog.Keyring, error) {
	dir, _, err := a.repoConfig()
	if err != nil {
		return "", ipns.Name{}, nil, err
	}
	name, err := remotelog.ReadName(dir)
	if err != nil {
		return "", ipns.Name{}, nil, noRepo(dir, err)
	}
	k, err := remotelog.LoadKeyring(dir, name)
	if err != nil {
		return "", ipns.Name{}, nil, err
	}
	if k == nil {
		return "", ipns.Name{}, nil, failf(nil, "the log of %s is not private: its messages are readable by anyone who has its name (a private log is made with 'rlog init --private')", dir)
	}
	return dir, name, k, nil
}

// initPrivate makes the read key of a new private log.
func initPrivate(dir string, name ipns.Name) error {
	k, err := remotelog.NewKeyring()
	if err != nil {
		return err
	}
	return remotelog.SaveKeyring(dir, name, k)
}

// sealer seals bodies for the repo's own log: those of a private log under
// its newest key; a plain log's pass as they are.
type sealer struct {
	k   *remotelog.Keyring // nil: not private
	dir string
}

func (a *app) ownSealer() (sealer, error) {
	dir, err := a.repoDir()
	if err != nil {
		return sealer{}, err
	}
	name, err := remotelog.ReadName(dir)
	if err != nil {
		return sealer{}, noRepo(dir, err)
	}
	k, err := remotelog.LoadKeyring(dir, name)
	return sealer{k: k, dir: dir}, err
}

func (s sealer) bodies(group []byte, bodies [][]byte) ([][]byte, error) {
	return s.k.SealAll(group, bodies)
}

// file returns the file to append for path: path itself, or a sealed copy
// in the repo, and a function that removes that copy.
func (s sealer) file(group []byte, path string) (string, func(), error) {
	if s.k == nil {
		return path, func() {}, nil
	}
	p, err := s.k.SealFile(group, path, s.dir)
	if err != nil {
		return "", nil, err
	}
	return p, func() { os.Remove(p) }, nil
}

// nameArg reads the NAME argument of fetch and follow: a log name, or a
// share link whose keys the repo in dir keeps from then on.
func nameArg(dir, arg string) (ipns.Name, error) {
	name, _, err := nameArgUndo(dir, arg)
	return name, err
}

// nameArgUndo is nameArg, also returning what gives the repo back the keys
// it held before the link's were added (nothing to undo for a name): a
// link whose key opens nothing is not kept.
func nameArgUndo(dir, arg string) (ipns.Name, func() error, error) {
	none := func() error { return nil }
	if !remotelog.IsLink(arg) {
		name, err := parseName(arg)
		return name, none, err
	}
	name, keys, err := remotelog.ParseLink(arg)
	if err != nil {
		return ipns.Name{}, none, usageFail(err, "%v", err)
	}
	prev, err := remotelog.LoadKeyring(dir, name)
	if err != nil {
		return ipns.Name{}, none, err
	}
	k := &remotelog.Keyring{}
	if prev != nil {
		k.Add(prev.Keys()...)
	}
	if err := k.Add(keys...); err != nil {
		return ipns.Name{}, none, failf(err, "the link's key for %s differs from the one this repo holds: is the link damaged? (%v)", name, err)
	}
	if err := remotelog.SaveKeyring(dir, name, k); err != nil {
		return ipns.Name{}, none, err
	}
	undo := func() error {
		if prev == nil {
			return remotelog.RemoveKeyring(dir, name)
		}
		return remotelog.SaveKeyring(dir, name, prev)
	}
	return name, undo, nil
}

// opening wraps deliver to open the bodies of log name with the keys the
// repo in dir holds for it, opened ahead of delivery by the reader of opts
// (ReadOptions.Prepare); without keys a sealed body stops the read (and a
// plain log is read as it was). private says the repo holds keys for it.
func opening(dir string, name ipns.Name, opts *remotelog.ReadOptions, deliver func(remotelog.Message) error) (open func(remotelog.Message) error, private bool, err error) {
	k, err := remotelog.LoadKeyring(dir, name)
	if err != nil {
		return nil, false, err
	}
	if k != nil {
		opts.Prepare = remotelog.OpenBodies(k)
	}
	return remotelog.Opening(k, deliver), k != nil, nil
}

// openLocal streams the opened body of a large message of the own log,
// r the sealed body.
func openLocal(k *remotelog.Keyring, group []byte, r io.ReadCloser) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		_, err := k.OpenTo(pw, group, r)
		r.Close()
		pw.CloseWithError(err)
	}()
	return pr
}

// privateHint explains a read that stopped at a sealed body.
func privateHint(name ipns.Name, err error) error {
	switch {
	case err == nil || explained(err):
		return err
	case errors.Is(err, remotelog.ErrPrivate):
		return failf(err, "log %s is private: %s. Nothing from there on was printed; read it with the share link its writer's 'rlog share' prints: rlog fetch 'rlog://%s#keys=...'", name, detail(err, remotelog.ErrPrivate), name)
	case errors.Is(err, remotelog.ErrDecrypt):
		return failf(err, "log %s: %s: %s. Nothing from there on was printed", name, remotelog.ErrDecrypt, detail(err, remotelog.ErrDecrypt))
	}
	return err
}

// detail is what the library found, the text after "sentinel: ".
func detail(err, sentinel error) string {
	return strings.TrimPrefix(foundText(err, sentinel), sentinel.Error()+": ")
}
