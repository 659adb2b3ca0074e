package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ipfs/boxo/ipns"

	"rlog/internal/netproxy"
	"rlog/remotelog"
)

type result struct {
	Via          string  `json:"via"`
	Missing      uint64  `json:"missing"`
	Seconds      float64 `json:"seconds"`
	Requests     int     `json:"requests"`
	Rounds       int     `json:"rounds"` // as the proxy saw them, the resolve included
	ReaderRounds int     `json:"reader_rounds"`
	Bytes        int64   `json:"bytes"` // response bodies
	HeaderBytes  int64   `json:"header_bytes"`
	PayloadBytes int64   `json:"payload_bytes"`
}

type report struct {
	Messages  int             `json:"messages"`
	Size      int             `json:"size"`
	RTTms     int64           `json:"rtt_ms"`
	WriteSecs float64         `json:"write_seconds"`
	Results   []result        `json:"results"`
	Hypercore json.RawMessage `json:"hypercore,omitempty"`
}

func main() {
	messages := flag.Int("messages", 1_000_000, "messages in the log")
	behind := flag.Int("behind", 100_000, "messages the first reader misses")
	size := flag.Int("size", 256, "body bytes per message")
	rtt := flag.Duration("rtt", 100*time.Millisecond, "round trip the proxy adds to every request")
	rlogBin := flag.String("rlog", "bin/rlog", "the rlog binary to run `rlog serve` with")
	hyper := flag.String("hypercore", "bench/hypercore/catchup.js", "Hypercore's script (empty: skip)")
	hyperScratch := flag.Bool("hypercore-scratch", false, "also time Hypercore from scratch (slow: its pipeline is shallow)")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()
	if err := run(*messages, *behind, *size, *rtt, *rlogBin, *hyper, *hyperScratch, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "moonshot:", err)
		os.Exit(1)
	}
}

func run(messages, behind, size int, rtt time.Duration, rlogBin, hyper string, hyperScratch, asJSON bool) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "rlog-moonshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rep := report{Messages: messages, Size: size, RTTms: rtt.Milliseconds()}
	dir := filepath.Join(tmp, "writer")
	progress("writing %d messages of %d B", messages, size)
	start := time.Now()
	name, cur, err := writeLog(ctx, dir, messages, behind, size)
	if err != nil {
		return err
	}
	rep.WriteSecs = time.Since(start).Seconds()

	gw, stop, err := serve(rlogBin, dir)
	if err != nil {
		return err
	}
	defer stop()
	for _, c := range []remotelog.Cursor{cur, {}} {
		r, err := catchUp(ctx, "rlog serve", gw, name, c, rtt)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results, r)
	}
	if api, kgw := os.Getenv("RLOG_KUBO_API"), os.Getenv("RLOG_KUBO_GW"); api != "" && kgw != "" {
		progress("copying the log into Kubo (backup, then restore into the daemon)")
		if err := toKubo(ctx, gw, name, api, filepath.Join(tmp, "log.car")); err != nil {
			return err
		}
		for _, c := range []remotelog.Cursor{cur, {}} {
			r, err := catchUp(ctx, "Kubo gateway", kgw, name, c, rtt)
			if err != nil {
				return err
			}
			rep.Results = append(rep.Results, r)
		}
	} else {
		progress("RLOG_KUBO_API and RLOG_KUBO_GW not set: no Kubo figures")
	}
	if hyper != "" {
		progress("Hypercore: the same catch-ups")
		args := []string{hyper, "--messages", fmt.Sprint(messages), "--behind", fmt.Sprint(behind), "--size", fmt.Sprint(size), "--rtt", fmt.Sprint(rtt.Milliseconds())}
		if !hyperScratch {
			args = append(args, "--scratch", "0")
		}
		cmd := exec.Command("node", args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("hypercore: %w", err)
		}
		rep.Hypercore = json.RawMessage(out)
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Printf("log: %d messages of %d B, written and published in %.1f s; round trip added: %s\n", messages, size, rep.WriteSecs, rtt)
	fmt.Printf("%-13s %9s %8s %9s %7s %12s %12s %9s\n", "via", "missing", "seconds", "requests", "rounds", "bytes", "payloads", "overhead")
	for _, r := range rep.Results {
		fmt.Printf("%-13s %9d %8.2f %9d %7d %12d %12d %8.1f%%\n", r.Via, r.Missing, r.Seconds, r.Requests, r.Rounds, r.Bytes, r.PayloadBytes,
			100*float64(r.Bytes+r.HeaderBytes-r.PayloadBytes)/float64(r.PayloadBytes))
	}
	if rep.Hypercore != nil {
		fmt.Printf("hypercore: %s\n", rep.Hypercore)
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "moonshot: "+format+"\n", args...)
}

// writeLog appends and publishes the log in dir and returns its name and
// the cursor of a reader behind messages behind.
func writeLog(ctx context.Context, dir string, messages, behind, size int) (ipns.Name, remotelog.Cursor, error) {
	var cur remotelog.Cursor
	cfg, _ := remotelog.DefaultConfig("paged")
	name, err := remotelog.Init(dir, cfg)
	if err != nil {
		return name, cur, err
	}
	repo, err := remotelog.Open(dir)
	if err != nil {
		return name, cur, err
	}
	defer repo.Close()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		return name, cur, err
	}
	defer w.Close()
	bodies := make([][]byte, 10_000)
	for i := range bodies {
		bodies[i] = make([]byte, size)
	}
	for done := 0; done < messages; done += len(bodies) {
		if _, err := w.Append(ctx, repo.DefaultGroup(), bodies[:min(len(bodies), messages-done)]); err != nil {
			return name, cur, err
		}
	}
	if _, err := w.Publish(ctx, remotelog.PublishOptions{}); err != nil {
		return name, cur, err
	}
	at := uint64(messages - behind)
	err = w.Scan(at, at, func(m remotelog.Message) error {
		cur = remotelog.Cursor{Seq: m.Seq, ID: m.ID}
		return nil
	})
	return name, cur, err
}

// serve runs `rlog serve` on the repo and returns its URL once it answers.
func serve(rlogBin, dir string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(rlogBin, "serve", "--repo", dir, "--listen", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start rlog serve: %w", err)
	}
	stop := func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(url + "/ipfs/bafkqaaa?format=raw")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return url, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("rlog serve does not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// toKubo copies the log, with its record, from the gateway at gw into the
// Kubo daemon at api, through a backup file.
func toKubo(ctx context.Context, gw string, name ipns.Name, api, car string) error {
	src, err := remotelog.OpenSource(ctx, gw)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := os.Create(car)
	if err != nil {
		return err
	}
	if _, err := remotelog.Backup(ctx, src, name, f, time.Now, nil); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	k, err := remotelog.OpenKubo(ctx, api)
	if err != nil {
		return err
	}
	defer k.Close()
	kb := k.(*remotelog.KuboBackend)
	_, err = remotelog.RestoreFile(ctx, car, kb.Kubo, kb.Names, time.Now)
	return err
}

// catchUp reads the log after cur from the gateway at url through a proxy
// adding rtt.
func catchUp(ctx context.Context, via, url string, name ipns.Name, cur remotelog.Cursor, rtt time.Duration) (result, error) {
	px, err := netproxy.Start(url, netproxy.Options{RTT: rtt})
	if err != nil {
		return result{}, err
	}
	defer px.Close()
	src, err := remotelog.OpenSource(ctx, px.URL)
	if err != nil {
		return result{}, err
	}
	defer src.Close()
	progress("%s: catching up from message %d", via, cur.Seq)
	start := time.Now()
	_, st, err := remotelog.CatchUp(ctx, src, name, cur, remotelog.ReadOptions{}, func(remotelog.Message) error { return nil })
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", via, err)
	}
	secs := time.Since(start).Seconds()
	c := px.Counts()
	return result{Via: via, Missing: st.Messages, Seconds: secs, Requests: c.Requests, Rounds: c.Rounds, ReaderRounds: st.Rounds,
		Bytes: c.Bytes, HeaderBytes: c.HeaderBytes, PayloadBytes: st.PayloadBytes}, nil
}
