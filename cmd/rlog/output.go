package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"rlog/internal/atomicfile"
	"rlog/remotelog"
)

// msgJSON is one message as `fetch --json`, `follow --json` and `log
// --json` print it.
type msgJSON struct {
	Seq       uint64 `json:"seq,omitempty"` // none for a message received over MVDS
	ID        string `json:"id"`
	Group     string `json:"group"`
	Timestamp string `json:"timestamp"`
	Size      uint64 `json:"size"`
	Body      []byte `json:"body,omitempty"`
	Text      string `json:"text,omitempty"`
	File      string `json:"file,omitempty"`
	// A group's messages (fetch --group) say who wrote them and what they
	// follow; Gap names the parents one was delivered without (--no-wait).
	Author  string   `json:"author,omitempty"`
	Parents []string `json:"parents,omitempty"`
	Gap     []string `json:"gap,omitempty"`
}

// printer prints messages, one line each. With outDir set, every body is
// saved to a file there instead and the line names the file; without it,
// a large message is an error, since its body is not printed.
type printer struct {
	w      io.Writer
	asJSON bool
	outDir string
	// open streams the body of a large message that comes without a file
	// (the local log's). Without outDir, such a message is listed with its
	// size, not its body: nothing is lost, the body stays where it is.
	open func(m remotelog.Message) (io.ReadCloser, error)
	// kept, when set, says a large message's body is kept in the repo
	// (fetch --keep): such a message is listed with its size and how to
	// save it, as the local log's are, instead of failing the fetch.
	kept string
	// group, when set, is the group message being printed.
	group *groupLine
	// private: the bodies are a private log's, saved readable by this
	// user only.
	private bool
	// mode is the mode of the files saved in outDir, once known.
	mode os.FileMode
}

type groupLine struct {
	author       string
	parents, gap []string
}

// printGroup prints a message of a group: print's line with its author
// first (and, with --json, its parents).
func (p *printer) printGroup(gm remotelog.GroupMessage, author string) error {
	gl := &groupLine{author: author}
	for _, id := range gm.Parents {
		gl.parents = append(gl.parents, id.String())
	}
	for _, id := range gm.Gap {
		gl.gap = append(gl.gap, id.String())
	}
	p.group = gl
	defer func() { p.group = nil }()
	return p.print(gm.Message)
}

const outHelp = "save each message's body to a file in this directory (SEQ-ID) and print its path instead of the body; needed for large messages"

func (p *printer) print(m remotelog.Message) error {
	var file string
	if p.outDir != "" {
		var err error
		if file, err = p.save(m); err != nil {
			return fmt.Errorf("save message %d: %w", m.Seq, err)
		}
	} else if m.IsLarge() && p.open == nil && p.kept == "" {
		return fmt.Errorf("message %d has a body of %d bytes, too large to print: give --out DIR to save bodies as files", m.Seq, m.BodySize)
	}
	if p.asJSON {
		j := msgJSON{Seq: m.Seq, ID: hex.EncodeToString(m.ID[:]), Group: hex.EncodeToString(m.GroupID), Timestamp: rfc3339(time.Unix(m.Timestamp, 0)), Size: m.BodySize, File: file}
		if g := p.group; g != nil {
			j.Author, j.Parents, j.Gap = g.author, g.parents, g.gap
		}
		if file == "" {
			j.Body = m.Body
			if utf8.Valid(m.Body) {
				j.Text = string(m.Body)
			}
		}
		b, _ := json.Marshal(j)
		_, err := fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	shown := "file:" + file
	switch {
	case m.IsLarge() && file == "" && p.kept != "":
		shown = fmt.Sprintf("large:%d bytes (kept: 'rlog fetch %s --all --out DIR' saves it)", m.BodySize, p.kept)
	case m.IsLarge() && file == "":
		shown = fmt.Sprintf("large:%d bytes (--out DIR saves it)", m.BodySize)
	case file == "":
		shown = bodyText(m.Body)
	}
	seq := "-" // a message received over MVDS has no place in a log
	if m.Seq > 0 {
		seq = fmt.Sprint(m.Seq)
	}
	if g := p.group; g != nil {
		if len(g.gap) > 0 {
			shown += fmt.Sprintf("\t(gap: %s not read)", plural(len(g.gap), "parent"))
		}
		_, err := fmt.Fprintf(p.w, "%s\t%s\t%s\t%s\t%s\n", shortName(g.author), seq, hex.EncodeToString(m.ID[:])[:16], rfc3339(time.Unix(m.Timestamp, 0)), shown)
		return err
	}
	_, err := fmt.Fprintf(p.w, "%s\t%s\t%s\t%s\n", seq, hex.EncodeToString(m.ID[:])[:16], rfc3339(time.Unix(m.Timestamp, 0)), shown)
	return err
}

// bodyText shows a body on one line: text as it is, text that would not
// read back as itself or would reach the terminal as more than text (a
// line break, a tab, an escape sequence, any rune strconv.IsPrint refuses,
// a leading quote, or a leading "base64:", "file:" or "large:", which mark
// other forms) quoted as a Go string, anything else as "base64:" and its
// base64.
func bodyText(body []byte) string {
	if !utf8.Valid(body) {
		return "base64:" + base64.StdEncoding.EncodeToString(body)
	}
	s := string(body)
	for _, mark := range []string{"base64:", "file:", "large:", `"`} {
		if strings.HasPrefix(s, mark) {
			return strconv.Quote(s)
		}
	}
	if strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// makeOutDir makes the folder given with --out, and its parents, if they
// are missing.
func makeOutDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// fileMode is the mode of the files save writes, whatever their size:
// 0600 for a private log's bodies, else what a new file gets, 0644 under
// the umask, as any tool writes files. The bodies go through temporary
// files made 0600, so the mode is learnt once, from a file made in outDir.
func (p *printer) fileMode() (os.FileMode, error) {
	if p.private {
		return 0o600, nil
	}
	if p.mode != 0 {
		return p.mode, nil
	}
	probe := filepath.Join(p.outDir, fmt.Sprintf(".rlog-mode-%d", os.Getpid()))
	os.Remove(probe) // left by a killed process of the same id
	f, err := os.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	f.Close()
	os.Remove(probe)
	if err != nil {
		return 0, err
	}
	p.mode = fi.Mode().Perm()
	return p.mode, nil
}

// save writes m's body to its file in outDir and returns the path.
func (p *printer) save(m remotelog.Message) (string, error) {
	path := filepath.Join(p.outDir, fmt.Sprintf("%d-%s", m.Seq, hex.EncodeToString(m.ID[:])[:16]))
	mode, err := p.fileMode()
	if err != nil {
		return "", err
	}
	switch {
	case m.BodyFile != "":
		// A verified file the reader spooled into outDir: keep it.
		if err := os.Chmod(m.BodyFile, mode); err != nil {
			return "", err
		}
		return path, os.Rename(m.BodyFile, path)
	case m.IsLarge():
		r, err := p.open(m)
		if err != nil {
			return "", err
		}
		defer r.Close()
		f, err := os.CreateTemp(p.outDir, ".rlog-body-*")
		if err != nil {
			return "", err
		}
		_, err = io.Copy(f, r)
		if err == nil {
			err = f.Chmod(mode)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
		if err != nil {
			os.Remove(f.Name())
		}
		return path, err
	}
	return path, atomicfile.Write(path, m.Body, mode)
}
