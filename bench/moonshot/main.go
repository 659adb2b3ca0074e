package main

import (
	"context"
	"encoding/hex"
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
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
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
	// PeakHeapMiB is the highest Go heap (objects) of the reader's
	// process during the catch-up, sampled every millisecond.
	PeakHeapMiB float64 `json:"peak_heap_mib"`
}

type report struct {
	Messages  int             `json:"messages"`
	Size      int             `json:"size"`
	RTTms     int64           `json:"rtt_ms"`
	WriteSecs float64         `json:"write_seconds"`
	Results   []result        `json:"results"`
	Hypercore json.RawMessage `json:"hypercore,omitempty"`
}

type config struct {
	messages, behind, size int
	rtt                    time.Duration
	rlogBin, hyper, repo   string
	hyperScratch, asJSON   bool
	budget                 int    // bytes; 0: the reader's default
	profile                string // where the readers' CPU profiles go
}

func main() {
	if job := os.Getenv(readerEnv); job != "" {
		if err := reader(job); err != nil {
			fmt.Fprintln(os.Stderr, "moonshot reader:", err)
			os.Exit(1)
		}
		return
	}
	var c config
	flag.IntVar(&c.messages, "messages", 1_000_000, "messages in the log")
	flag.IntVar(&c.behind, "behind", 100_000, "messages the first reader misses")
	flag.IntVar(&c.size, "size", 256, "body bytes per message")
	flag.DurationVar(&c.rtt, "rtt", 100*time.Millisecond, "round trip the proxy adds to every request")
	flag.StringVar(&c.rlogBin, "rlog", "bin/rlog", "the rlog binary to run `rlog serve` with")
	flag.StringVar(&c.hyper, "hypercore", "bench/hypercore/catchup.js", "Hypercore's script (empty: skip)")
	flag.BoolVar(&c.hyperScratch, "hypercore-scratch", false, "also time Hypercore from scratch (slow: its pipeline is shallow)")
	flag.BoolVar(&c.asJSON, "json", false, "print the report as JSON")
	flag.StringVar(&c.repo, "repo", "", "the writer's repo: written there if it holds no repo, read as it is if it does, and kept (default: a temporary one)")
	flag.StringVar(&c.profile, "cpuprofile", "", "write each reader's CPU profile to this prefix plus via and missing")
	mib := flag.Int("budget", 0, "the reader's memory budget in MiB (0: the reader's default)")
	flag.Parse()
	c.budget = *mib << 20
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "moonshot:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "rlog-moonshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	messages, behind, size, rtt := c.messages, c.behind, c.size, c.rtt
	rep := report{Messages: messages, Size: size, RTTms: rtt.Milliseconds()}
	dir := c.repo
	if dir == "" {
		dir = filepath.Join(tmp, "writer")
	}
	var name ipns.Name
	var cur remotelog.Cursor
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		progress("reading the log in %s as it is", dir)
		if name, cur, messages, err = openLog(dir, behind); err != nil {
			return err
		}
		rep.Messages = messages
	} else {
		progress("writing %d messages of %d B", messages, size)
		start := time.Now()
		if name, cur, err = writeLog(ctx, dir, messages, behind, size); err != nil {
			return err
		}
		rep.WriteSecs = time.Since(start).Seconds()
	}
	rlogBin, hyper, hyperScratch, asJSON := c.rlogBin, c.hyper, c.hyperScratch, c.asJSON

	gw, stop, err := serve(rlogBin, dir)
	if err != nil {
		return err
	}
	defer stop()
	for _, cur := range []remotelog.Cursor{cur, {}} {
		r, err := catchUp(ctx, "rlog serve", gw, name, cur, rtt, c)
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
		for _, cur := range []remotelog.Cursor{cur, {}} {
			r, err := catchUp(ctx, "Kubo gateway", kgw, name, cur, rtt, c)
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
	fmt.Printf("%-13s %9s %8s %9s %7s %12s %12s %9s %9s\n", "via", "missing", "seconds", "requests", "rounds", "bytes", "payloads", "overhead", "heap MiB")
	for _, r := range rep.Results {
		fmt.Printf("%-13s %9d %8.2f %9d %7d %12d %12d %8.1f%% %9.1f\n", r.Via, r.Missing, r.Seconds, r.Requests, r.Rounds, r.Bytes, r.PayloadBytes,
			100*float64(r.Bytes+r.HeaderBytes-r.PayloadBytes)/float64(r.PayloadBytes), r.PeakHeapMiB)
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
	cur, err = cursorAt(w, behind)
	return name, cur, err
}

// cursorAt is the cursor of a reader of w's log behind messages behind.
func cursorAt(w *remotelog.Writer, behind int) (remotelog.Cursor, error) {
	var cur remotelog.Cursor
	at := w.Len() - uint64(min(uint64(behind), w.Len()))
	if at == 0 {
		return cur, nil // from scratch
	}
	err := w.Scan(at, at, func(m remotelog.Message) error {
		cur = remotelog.Cursor{Seq: m.Seq, ID: m.ID}
		return nil
	})
	return cur, err
}

// openLog opens the published repo in dir and returns its name, the
// cursor of a reader behind messages behind and the log's length.
func openLog(dir string, behind int) (ipns.Name, remotelog.Cursor, int, error) {
	repo, err := remotelog.Open(dir)
	if err != nil {
		return ipns.Name{}, remotelog.Cursor{}, 0, err
	}
	defer repo.Close()
	w, err := repo.Writer(nil, nil)
	if err != nil {
		return ipns.Name{}, remotelog.Cursor{}, 0, err
	}
	defer w.Close()
	cur, err := cursorAt(w, behind)
	return w.Name(), cur, int(w.Len()), err
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
// adding rtt. The reader runs in a process of its own (this program,
// started again), so that its heap figure is its own, not the proxy's.
func catchUp(ctx context.Context, via, url string, name ipns.Name, cur remotelog.Cursor, rtt time.Duration, c config) (result, error) {
	px, err := netproxy.Start(url, netproxy.Options{RTT: rtt})
	if err != nil {
		return result{}, err
	}
	defer px.Close()
	progress("%s: catching up from message %d", via, cur.Seq)
	j := readerJob{URL: px.URL, Name: name.String(), Seq: cur.Seq, ID: hex.EncodeToString(cur.ID[:]), Budget: c.budget}
	if c.profile != "" {
		j.Profile = fmt.Sprintf("%s%s-%d.prof", c.profile, strings.ReplaceAll(via, " ", "-"), cur.Seq)
	}
	job, err := json.Marshal(j)
	if err != nil {
		return result{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), readerEnv+"="+string(job))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("%s: the reader: %w", via, err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return result{}, fmt.Errorf("%s: the reader's report: %w", via, err)
	}
	n := px.Counts()
	r.Via, r.Requests, r.Rounds, r.Bytes, r.HeaderBytes = via, n.Requests, n.Rounds, n.Bytes, n.HeaderBytes
	return r, nil
}

// readerEnv carries a readerJob to the reader's process.
const readerEnv = "RLOG_MOONSHOT_READER"

type readerJob struct {
	URL, Name string
	Seq       uint64
	ID        string // hex
	Budget    int
	Profile   string // a CPU profile of the catch-up goes there, if set
}

// reader is the reader's process: it catches up as job says and prints
// its result as JSON (time, messages, its own rounds, payload bytes, peak
// heap).
func reader(job string) error {
	var j readerJob
	if err := json.Unmarshal([]byte(job), &j); err != nil {
		return err
	}
	name, err := ipns.NameFromString(j.Name)
	if err != nil {
		return err
	}
	cur := remotelog.Cursor{Seq: j.Seq}
	if _, err := hex.Decode(cur.ID[:], []byte(j.ID)); err != nil {
		return fmt.Errorf("cursor id: %w", err)
	}
	ctx := context.Background()
	src, err := remotelog.OpenSource(ctx, j.URL)
	if err != nil {
		return err
	}
	defer src.Close()
	if j.Profile != "" {
		f, err := os.Create(j.Profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	peak := sampleHeap()
	start := time.Now()
	_, st, err := remotelog.CatchUp(ctx, src, name, cur, remotelog.ReadOptions{MemoryBudget: j.Budget}, func(remotelog.Message) error { return nil })
	secs := time.Since(start).Seconds()
	heap := peak()
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(result{Missing: st.Messages, Seconds: secs, ReaderRounds: st.Rounds, PayloadBytes: st.PayloadBytes,
		PeakHeapMiB: float64(heap) / (1 << 20)})
}

// sampleHeap collects garbage, then samples the Go heap's objects every
// millisecond until the function it returns is called, which returns the
// highest.
func sampleHeap() func() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var high uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			high = max(high, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return high
	}
}
