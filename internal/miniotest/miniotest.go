package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"rlog/cas"
)

// Binary is the MinIO server binary, or "" when there is none.
func Binary() string {
	if p := os.Getenv("RLOG_MINIO"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	for err == nil {
		if _, serr := os.Stat(filepath.Join(dir, "go.mod")); serr == nil {
			p := filepath.Join(dir, "bin", "minio")
			if _, serr := os.Stat(p); serr == nil {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return ""
}

// Require returns the binary, or skips t (fails it under CI=true).
func Require(t testing.TB) string {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "no MinIO server: build it with `bash .ci/minio.sh` (bin/minio) or set RLOG_MINIO"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Server is one running MinIO server.
type Server struct {
	Bin, Dir, Addr       string
	AccessKey, SecretKey string
	cmd                  *exec.Cmd
	exited               chan struct{}
}

// Start runs a server on a free port of 127.0.0.1, stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Bin: bin, Dir: t.TempDir(), Addr: addr, AccessKey: "rlog-" + token(6), SecretKey: token(20)}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

func token(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) start() error {
	cmd := exec.Command(s.Bin, "server", "--quiet", "--address", s.Addr, filepath.Join(s.Dir, "data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	logf, err := os.Create(filepath.Join(s.Dir, "minio.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("miniotest: start %s: %w", s.Bin, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(s.exited) }()
	// Wait until it answers, with a generous deadline.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "minio.log"))
			return fmt.Errorf("miniotest: the server exited at start:\n%s", log)
		default:
		}
		resp, err := http.Get("http://" + s.Addr + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("miniotest: the server at %s did not answer within a minute", s.Addr)
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on its data and address.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// CPU is the processor time the server has used so far (user and system,
// from /proc: Linux only; 0 elsewhere). Benchmarks report it beside the
// client's, since the server shares the machine's cores.
func (s *Server) CPU() time.Duration {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 14th and 15th of the whole line, in clock ticks (100/s).
	rest := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// Config is how a client reaches the server.
func (s *Server) Config() cas.S3Config {
	return cas.S3Config{Endpoint: s.Endpoint(), Region: "us-east-1", AccessKey: s.AccessKey, SecretKey: s.SecretKey}
}

// Env is the server's address and credentials as AWS environment variables.
func (s *Server) Env() []string {
	return []string{"AWS_ENDPOINT_URL=" + s.Endpoint(), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
}

// Client is an admin client of the server.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Addr, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Bucket makes a bucket; public makes it readable by anyone over HTTP.
func (s *Server) Bucket(t testing.TB, name string, public bool) {
	t.Helper()
	if err := s.MakeBucket(name, public); err != nil {
		t.Fatal(err)
	}
}

// MakeBucket is Bucket for callers without a testing.TB.
func (s *Server) MakeBucket(name string, public bool) error {
	ctx := context.Background()
	c, err := minio.New(s.Addr, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return fmt.Errorf("miniotest: make bucket %s: %w", name, err)
	}
	if public {
		policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, name)
		if err := c.SetBucketPolicy(ctx, name, policy); err != nil {
			return fmt.Errorf("miniotest: make bucket %s public: %w", name, err)
		}
	}
	return nil
}
