package remotelog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"rlog/mvds"
)

// ControlSocket is where the process that owns a repo (rlog serve) listens
// for other rlog processes: in run/, a directory of the repo that only its
// owner may enter.
func ControlSocket(dir string) string { return filepath.Join(dir, "run", "rlog.sock") }

// ListenControl listens on the control socket of the repo in dir; the
// caller holds the repo lock. Whatever the umask, the socket is 0600 in a
// 0700 directory of this process's user: another user can neither reach
// it nor, were it reachable, be served (the server checks each peer, see
// ControlServer).
func ListenControl(dir string) (net.Listener, error) {
	sock := ControlSocket(dir)
	run := filepath.Dir(sock)
	if err := os.Mkdir(run, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("remotelog: control socket: %w", err)
	}
	st, err := os.Lstat(run)
	if err != nil {
		return nil, fmt.Errorf("remotelog: control socket: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("remotelog: control socket: %s is not a directory", run)
	}
	if uid, ok := fileOwner(st); ok && uid != os.Getuid() {
		return nil, fmt.Errorf("remotelog: control socket: %s belongs to uid %d, not to this user (uid %d)", run, uid, os.Getuid())
	}
	// Mkdir applied the umask, and an old run/ may have any mode.
	if err := os.Chmod(run, 0o700); err != nil {
		return nil, fmt.Errorf("remotelog: control socket: %w", err)
	}
	os.Remove(sock) // one left by a process that died: the caller holds the lock
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("remotelog: control socket: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("remotelog: control socket: %w", err)
	}
	return ln, nil
}

// ControlServer serves s.Control on the control socket. It reads each
// connecting process's credentials from the socket (SO_PEERCRED), and
// Control answers only processes of this process's user.
func (s *Server) ControlServer() *http.Server {
	return &http.Server{Handler: s.Control(), ConnContext: controlConnContext, ReadHeaderTimeout: 10 * time.Second}
}

type peerKey struct{}

// peer is who is at the other end of a control connection.
type peer struct {
	uid int
	err error // why the credentials could not be read
}

// controlConnContext records the peer's credentials in the context of the
// requests on c.
func controlConnContext(ctx context.Context, c net.Conn) context.Context {
	uid, err := peerUID(c)
	return context.WithValue(ctx, peerKey{}, peer{uid: uid, err: err})
}

// allowedPeer says whether a process of user uid may append and publish
// through this process: only its own user may, as only it may write the
// repo.
func allowedPeer(uid int) bool { return uid == os.Getuid() }

// checkPeer refuses requests from another user, and requests whose
// credentials are unknown.
func checkPeer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(peerKey{}).(peer)
		var why string
		switch {
		case !ok:
			why = "remotelog: control socket: the caller's credentials are unknown (serve Control with ControlServer)"
		case p.err != nil:
			why = fmt.Sprintf("remotelog: control socket: the caller's credentials: %v", p.err)
		case !allowedPeer(p.uid):
			why = fmt.Sprintf("remotelog: control socket: uid %d may not use the repo of uid %d", p.uid, os.Getuid())
		default:
			h.ServeHTTP(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusForbidden)
		json.NewEncoder(rw).Encode(map[string]string{"error": why})
	})
}

// ControlClient appends and publishes through the process that owns a repo.
type ControlClient struct {
	sock string
	hc   *http.Client
}

// DialControl returns a client for the owner of the repo in dir, or an
// error when no owner listens there.
func DialControl(dir string) (*ControlClient, error) {
	sock := ControlSocket(dir)
	if _, err := os.Stat(sock); err != nil {
		return nil, fmt.Errorf("remotelog: no rlog process owns %s: %w", dir, err)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	return &ControlClient{sock: sock, hc: &http.Client{Transport: tr}}, nil
}

func (c *ControlClient) call(ctx context.Context, path string, in, out any) error {
	resp, err := c.post(ctx, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Append appends through the owner; it returns once the messages are
// durable there.
func (c *ControlClient) Append(ctx context.Context, group []byte, bodies [][]byte) ([]Appended, error) {
	var out []Appended
	err := c.call(ctx, "/append", AppendRequest{Group: group, Bodies: bodies}, &out)
	return out, err
}

// AppendMeta appends bodies naming md's parents through the owner.
func (c *ControlClient) AppendMeta(ctx context.Context, group []byte, md *mvds.Metadata, bodies [][]byte) ([]Appended, error) {
	req := AppendRequest{Group: group, Bodies: bodies}
	if md != nil {
		if md.Ephemeral {
			return nil, fmt.Errorf("remotelog: append: an ephemeral message is never logged: send it over MVDS")
		}
		req.Parents = md.Parents
	}
	var out []Appended
	err := c.call(ctx, "/append", req, &out)
	return out, err
}

// SendEphemeral has the owner (a node that syncs) send body as an
// ephemeral MVDS message; it returns the message id, hex.
func (c *ControlClient) SendEphemeral(ctx context.Context, body []byte) (string, error) {
	var id string
	err := c.call(ctx, "/ephemeral", struct {
		Body []byte `json:"body"`
	}{body}, &id)
	return id, err
}

// AppendFile appends the file at path through the owner, which reads it.
func (c *ControlClient) AppendFile(ctx context.Context, group []byte, path string) (Appended, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Appended{}, err
	}
	var out Appended
	err = c.call(ctx, "/append", AppendRequest{Group: group, File: abs}, &out)
	return out, err
}

// Publish publishes through the owner.
func (c *ControlClient) Publish(ctx context.Context, _ PublishOptions) (PublishResult, error) {
	var res PublishResult
	err := c.call(ctx, "/publish", struct{}{}, &res)
	return res, err
}

// Status fetches the owner's status (rlog sync) into out.
func (c *ControlClient) Status(ctx context.Context, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://rlog/status", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("remotelog: the repo's owner at %s: %w", c.sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("remotelog: the node that owns the repo runs no MVDS sync (%s): start it with --sync (rlog run --sync, or rlog sync)", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
