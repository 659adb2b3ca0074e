package remotelog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
)

// ControlSocket is where the process that owns a repo (rlog serve) listens
// for other rlog processes.
func ControlSocket(dir string) string { return filepath.Join(dir, "rlog.sock") }

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
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://rlog"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("remotelog: the repo's owner at %s: %w", c.sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("remotelog: the repo's owner: %s", resp.Status)
	}
	return json.Unmarshal(body, out)
}

// Append appends through the owner; it returns once the messages are
// durable there.
func (c *ControlClient) Append(ctx context.Context, group []byte, bodies [][]byte) ([]Appended, error) {
	var out []Appended
	err := c.call(ctx, "/append", AppendRequest{Group: group, Bodies: bodies}, &out)
	return out, err
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
		return fmt.Errorf("remotelog: the repo's owner has no status (%s): is `rlog sync` running?", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
