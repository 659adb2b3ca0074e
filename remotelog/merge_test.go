package remotelog

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"rlog/mvds"
)

// simMsg is a message of a simulated member's log.
type simMsg struct {
	id      mvds.MessageID
	parents []mvds.MessageID
}

// simulateGroup runs writers appending concurrently, partitioned and
// rejoined: each names the heads it has seen as parents, and reads the
// others' logs only within its partition. It returns each member's log.
func simulateGroup(rng *rand.Rand, writers, steps int) [][]simMsg {
	logs := make([][]simMsg, writers)
	heads := make([]*Heads, writers)
	read := make([][]int, writers) // read[a][b]: how much of b's log a has seen
	for i := range heads {
		heads[i] = NewHeads(nil)
		read[i] = make([]int, writers)
	}
	part := make([]int, writers) // partition of each writer
	n := 0
	for step := 0; step < steps; step++ {
		switch r := rng.IntN(100); {
		case r < 5: // partition anew, or rejoin
			for i := range part {
				part[i] = rng.IntN(2)
			}
			if rng.IntN(3) == 0 {
				clear(part)
			}
		case r < 60:
			a := rng.IntN(writers)
			n++
			var id mvds.MessageID
			binary.BigEndian.PutUint64(id[:], rng.Uint64())
			id = sha256.Sum256(append(id[:8], byte(a), byte(n), byte(n>>8), byte(n>>16)))
			m := simMsg{id: id, parents: heads[a].List()}
			logs[a] = append(logs[a], m)
			heads[a].Observe(fmt.Sprint(a), m.id, m.parents)
			read[a][a] = len(logs[a])
		default:
			a, b := rng.IntN(writers), rng.IntN(writers)
			if part[a] != part[b] {
				continue
			}
			for _, m := range logs[b][read[a][b]:] {
				heads[a].Observe(fmt.Sprint(b), m.id, m.parents)
			}
			read[a][b] = len(logs[b])
		}
	}
	return logs
}

// feed adds the logs' messages in a random interleaving that keeps each
// log's order; with stream, it also takes what is ready at random moments.
func feed(rng *rand.Rand, m *Merger, logs [][]simMsg, stream bool, out *[]GroupMessage) {
	next := make([]int, len(logs))
	for {
		var open []int
		for a := range logs {
			if next[a] < len(logs[a]) {
				open = append(open, a)
			}
		}
		if len(open) == 0 {
			break
		}
		a := open[rng.IntN(len(open))]
		s := logs[a][next[a]]
		next[a]++
		m.Add(a, s.id, s.parents, Message{})
		if stream && rng.IntN(4) == 0 {
			drain(m, out)
		}
	}
	drain(m, out)
}

func drain(m *Merger, out *[]GroupMessage) {
	for {
		g, ok := m.Next()
		if !ok {
			return
		}
		*out = append(*out, g)
	}
}

// checkCausal fails unless got holds every message of logs once, each after
// its parents and its author's previous message.
func checkCausal(t *testing.T, logs [][]simMsg, got []GroupMessage) {
	t.Helper()
	pos := map[mvds.MessageID]int{}
	for i, g := range got {
		if _, dup := pos[g.ID]; dup {
			t.Fatalf("message %.8s delivered twice", g.ID)
		}
		pos[g.ID] = i
	}
	total := 0
	for a, l := range logs {
		total += len(l)
		for k, s := range l {
			p, ok := pos[s.id]
			if !ok {
				t.Fatalf("message %d of member %d never delivered", k, a)
			}
			for _, par := range s.parents {
				if pos[par] >= p {
					t.Fatalf("message %d of member %d delivered before its parent %.8s", k, a, par)
				}
			}
			if k > 0 && pos[l[k-1].id] >= p {
				t.Fatalf("message %d of member %d delivered before its previous", k, a)
			}
		}
	}
	if len(got) != total {
		t.Fatalf("delivered %d messages, the logs hold %d", len(got), total)
	}
}

func ids(gs []GroupMessage) []mvds.MessageID {
	out := make([]mvds.MessageID, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}

// TestMergePartitioned: three writers append while partitioned and
// rejoined; every reader, however the logs arrive, delivers every message
// once, after its parents, and readers given everything at once print the
// same order.
func TestMergePartitioned(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for round := 0; round < 50; round++ {
		rng := rand.New(rand.NewPCG(seed, uint64(round)))
		logs := simulateGroup(rng, 3, 300)
		var first []mvds.MessageID
		for reader := 0; reader < 3; reader++ {
			var got []GroupMessage
			m := NewMerger()
			feed(rng, m, logs, false, &got)
			checkCausal(t, logs, got)
			if reader == 0 {
				first = ids(got)
			} else if !slices.Equal(first, ids(got)) {
				t.Fatalf("seed %d round %d: reader %d delivered another order than reader 0", seed, round, reader)
			}
			if m.Len() != 0 {
				t.Fatalf("%d messages still held back", m.Len())
			}
		}
		// A reader taking messages as they come still keeps causal order.
		var got []GroupMessage
		feed(rng, NewMerger(), logs, true, &got)
		checkCausal(t, logs, got)
	}
}

// TestMergeMissingParent: a member's log not read holds back only what
// depends on it, is reported, and releases them when it arrives.
func TestMergeMissingParent(t *testing.T) {
	id := func(s string) mvds.MessageID { return sha256.Sum256([]byte(s)) }
	m := NewMerger()
	// Member 1 wrote b1 after reading a1 (member 0's), then b2; member 2
	// wrote c1 alone.
	m.Add(1, id("b1"), []mvds.MessageID{id("a1")}, Message{})
	m.Add(1, id("b2"), []mvds.MessageID{id("b1")}, Message{})
	m.Add(2, id("c1"), nil, Message{})
	var got []GroupMessage
	drain(m, &got)
	if len(got) != 1 || got[0].ID != id("c1") {
		t.Fatalf("delivered %v, want only c1", ids(got))
	}
	by, missing := m.Waiting()
	if by[1] != 2 || len(by) != 1 || len(missing) != 1 || missing[0] != id("a1") {
		t.Fatalf("waiting %v for %v, want 2 of member 1 for a1", by, missing)
	}
	m.Add(0, id("a1"), nil, Message{})
	drain(m, &got)
	want := []mvds.MessageID{id("c1"), id("a1"), id("b1"), id("b2")}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("delivered %x, want c1 a1 b1 b2", ids(got))
	}
	if m.Add(0, id("a1"), nil, Message{}) {
		t.Fatal("a message added twice was taken")
	}
}

// TestMergeFlush: --no-wait delivers what waits with the gap marked.
func TestMergeFlush(t *testing.T) {
	id := func(s string) mvds.MessageID { return sha256.Sum256([]byte(s)) }
	m := NewMerger()
	m.Add(1, id("b1"), []mvds.MessageID{id("a1")}, Message{})
	m.Add(1, id("b2"), nil, Message{})
	var got []GroupMessage
	if err := m.Flush(func(g GroupMessage) error { got = append(got, g); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != id("b1") || !slices.Equal(got[0].Gap, []mvds.MessageID{id("a1")}) || got[1].Gap != nil {
		t.Fatalf("flushed %+v", got)
	}
}

func TestHeads(t *testing.T) {
	id := func(s string) mvds.MessageID { return sha256.Sum256([]byte(s)) }
	h := NewHeads(nil)
	h.Observe("a", id("a1"), nil)
	h.Observe("b", id("b1"), nil)
	h.Observe("a", id("a2"), nil) // follows a1 in a's log
	h.Observe("c", id("c1"), []mvds.MessageID{id("b1")})
	got := h.List()
	want := []mvds.MessageID{id("a2"), id("c1")}
	slices.SortFunc(want, func(x, y mvds.MessageID) int {
		if lessID(x, y) {
			return -1
		}
		return 1
	})
	if !slices.Equal(got, want) {
		t.Fatalf("heads %x, want a2 c1", got)
	}
}

func FuzzMerge(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint16(200))
	f.Fuzz(func(t *testing.T, seed uint64, writers uint8, steps uint16) {
		w := int(writers%8) + 1
		rng := rand.New(rand.NewPCG(seed, 7))
		logs := simulateGroup(rng, w, int(steps%2000))
		var a, b []GroupMessage
		feed(rng, NewMerger(), logs, false, &a)
		feed(rng, NewMerger(), logs, false, &b)
		checkCausal(t, logs, a)
		if !slices.Equal(ids(a), ids(b)) {
			t.Fatal("two readers delivered different orders")
		}
	})
}

// BenchmarkMerge merges 1,000,000 messages of 100 members.
func BenchmarkMerge(b *testing.B) {
	const members, total = 100, 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	logs := make([][]simMsg, members)
	var recent []mvds.MessageID
	for i := 0; i < total; i++ {
		a := rng.IntN(members)
		var id mvds.MessageID
		binary.LittleEndian.PutUint64(id[:], uint64(i))
		id = sha256.Sum256(id[:8])
		// Each names one or two recent messages, as a writer who read
		// the others a moment ago.
		var parents []mvds.MessageID
		if len(recent) > 0 {
			parents = append(parents, recent[len(recent)-1-rng.IntN(min(len(recent), 50))])
		}
		logs[a] = append(logs[a], simMsg{id: id, parents: parents})
		recent = append(recent, id)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := NewMerger()
		next := make([]int, members)
		n := 0
		// Members' streams arrive in pages of 64, round robin.
		for open := true; open; {
			open = false
			for a := range logs {
				end := min(next[a]+64, len(logs[a]))
				for _, s := range logs[a][next[a]:end] {
					m.Add(a, s.id, s.parents, Message{})
				}
				if next[a] = end; end < len(logs[a]) {
					open = true
				}
				for {
					if _, ok := m.Next(); !ok {
						break
					}
					n++
				}
			}
		}
		if n != total {
			b.Fatalf("delivered %d of %d", n, total)
		}
	}
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "msg/s")
	// On a shared machine wall time includes waiting for a core; the CPU
	// time this process spent is the cost of the merge (the garbage
	// collector's included).
	b.ReportMetric(float64(total*b.N)/(cpuTime()-cpu0).Seconds(), "msg/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// FuzzGroupFiles: whatever groups.json and a group's delivered file hold,
// reading them gives groups or an error, never a panic.
func FuzzGroupFiles(f *testing.F) {
	f.Add([]byte(`{"groups":[{"name":"room","members":["k51qzi5uqu5dgy"],"heads":["00"]}]}`), []byte("short"))
	f.Add([]byte(`{"groups":[{"name":"room","members":[],"heads":[]}]}`), make([]byte, 81))
	f.Fuzz(func(t *testing.T, groups, delivered []byte) {
		dir := t.TempDir()
		s := Groups(dir)
		if err := os.WriteFile(s.path(), groups, 0o644); err != nil {
			t.Fatal(err)
		}
		gs, err := s.List()
		if err != nil {
			return
		}
		for _, g := range gs {
			g.MemberNames()
			g.HeadIDs()
			if err := os.MkdirAll(s.Cursors(g.Name).dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.deliveredPath(g.Name), delivered, 0o644); err != nil {
				t.Fatal(err)
			}
			ks, err := s.delivered(g.Name)
			if err == nil && len(ks) != len(delivered)/40 {
				t.Fatalf("%d records from %d bytes", len(ks), len(delivered))
			}
		}
	})
}

// TestDeliveredFileBounded: the ids delivered are kept in a file bounded
// by twice its window, the newest window read back, a torn last record
// (a crash while appending) dropped, and compaction leaves the file whole.
func TestDeliveredFileBounded(t *testing.T) {
	path := t.TempDir() + "/g/delivered"
	f := &deliveredFile{path: path, window: 100}
	var all []knownID
	for i := 0; i < 1000; i++ {
		var k knownID
		binary.BigEndian.PutUint64(k.id[:], uint64(i))
		k.height = uint64(i)
		all = append(all, k)
		if i%7 == 6 || i == 999 {
			if err := f.append(all[len(all)-1-(i%7):]); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() > 2*100*deliveredRecord {
				t.Fatalf("after %d ids the file holds %d bytes, over twice the window", i+1, st.Size())
			}
		}
	}
	got, err := (&deliveredFile{path: path, window: 100}).load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || got[0] != all[900] || got[99] != all[999] {
		t.Fatalf("read back %d ids from %d: want the newest 100", len(got), got[0].height)
	}
	// A torn record is dropped, and the next append realigns.
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write([]byte{1, 2, 3})
	fh.Close()
	if got, err = (&deliveredFile{path: path, window: 100}).load(); err != nil || len(got) != 100 || got[99] != all[999] {
		t.Fatalf("with a torn record: %d ids, %v", len(got), err)
	}
	f2 := &deliveredFile{path: path, window: 100}
	if err := f2.append(all[:1]); err != nil {
		t.Fatal(err)
	}
	if got, err = f2.load(); err != nil || got[99] != all[0] {
		t.Fatalf("after realigning: %v", err)
	}
}

// TestMergerCompact: Compact keeps of the delivered only ids and heights,
// the newest window of them: a message naming one kept comes at once, at
// the height it would have had; one naming a forgotten parent waits.
func TestMergerCompact(t *testing.T) {
	m := NewMerger()
	var prev []mvds.MessageID
	var added []mvds.MessageID
	for i := 0; i < 10; i++ {
		id := sha256.Sum256([]byte{byte(i)})
		m.Add(0, id, prev, Message{})
		prev = []mvds.MessageID{id}
		added = append(added, id)
	}
	var out []GroupMessage
	drain(m, &out)
	if len(out) != 10 {
		t.Fatalf("delivered %d of 10", len(out))
	}
	m.Compact(4)
	if len(m.seen) != 0 || len(m.known) != 4 {
		t.Fatalf("after Compact(4): %d nodes, %d known", len(m.seen), len(m.known))
	}
	if m.Add(0, added[9], nil, Message{}) {
		t.Fatal("a message delivered before was added again")
	}
	a := sha256.Sum256([]byte("names the newest"))
	b := sha256.Sum256([]byte("names a forgotten one"))
	m.AddLive(1, a, []mvds.MessageID{added[9]}, Message{})
	m.AddLive(1, b, []mvds.MessageID{added[0]}, Message{})
	out = out[:0]
	drain(m, &out)
	if len(out) != 1 || out[0].ID != a || out[0].Height != 11 {
		t.Fatalf("delivered %v: want only the one naming a kept parent, at height 11", ids(out))
	}
	if m.Len() != 1 {
		t.Fatalf("%d wait, want the one naming a forgotten parent", m.Len())
	}
}

// TestMergeStableSameOrder: three writers append while partitioned and
// rejoined; readers read at different moments, each seeing of each log
// what was written by then (several times, or once at the end). With
// Stable, every reader delivers a prefix of one and the same sequence,
// the (height, id) order of all the messages, each once and after its
// parents; Flush at the end makes them all deliver the whole of it.
// Without Stable, readers reading at different moments differ.
func TestMergeStableSameOrder(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	differed, stableGot, total := 0, 0, 0
	for round := 0; round < 20; round++ {
		logs := simulateGroup(rng, 3, 300)
		// All at once, Flushed: the whole sequence.
		whole := NewMerger()
		for a, l := range logs {
			for _, s := range l {
				whole.Add(a, s.id, s.parents, Message{})
			}
		}
		var want []GroupMessage
		drain(whole, &want)
		if err := whole.Flush(func(g GroupMessage) error { want = append(want, g); return nil }); err != nil {
			t.Fatal(err)
		}
		checkCausal(t, logs, want)
		read := func(stable bool, moments int) []GroupMessage {
			m := NewMerger()
			if stable {
				m.Stable(len(logs))
			}
			var got []GroupMessage
			next := make([]int, len(logs))
			for k := 1; k <= moments; k++ {
				// At moment k, each log as far as a random point of the
				// writing, later moments further (the last: all).
				for a, l := range logs {
					upTo := len(l)
					if k < moments {
						upTo = max(next[a], min(len(l), rng.IntN(len(l)+1)*k/moments))
					}
					for ; next[a] < upTo; next[a]++ {
						m.Add(a, l[next[a]].id, l[next[a]].parents, Message{})
					}
				}
				drain(m, &got)
			}
			return got
		}
		for r := 0; r < 4; r++ {
			got := read(true, 1+rng.IntN(5))
			stableGot += len(got)
			total += len(want)
			for k := range got {
				if got[k].ID != want[k].ID {
					t.Fatalf("seed %d round %d: a stable reader's message %d is %.8s, the whole order's %.8s", seed, round, k, got[k].ID, want[k].ID)
				}
			}
		}
		a, b := read(false, 4), read(false, 1)
		for k := range min(len(a), len(b)) {
			if a[k].ID != b[k].ID {
				differed++
				break
			}
		}
	}
	if differed == 0 {
		t.Logf("seed %d: readers without Stable never differed in 20 rounds", seed)
	}
	// What is not stable at the end is the tail no writer has followed yet.
	t.Logf("stable readers delivered %d of %d messages, readers without it differed in %d of 20 rounds", stableGot, total, differed)
	if stableGot < total/2 {
		t.Fatalf("seed %d: stable readers delivered only %d of %d messages", seed, stableGot, total)
	}
}

// TestGroupReaderCursorPastForgotten: a member's cursor moves past its
// messages delivered, also those the merge has forgotten since (its
// window): a and b came over MVDS and were delivered; the member's log then
// gives c (waiting for a parent), a and b; once c is delivered, the cursor
// moves past all three, a forgotten meanwhile.
func TestGroupReaderCursorPastForgotten(t *testing.T) {
	name := "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzbxr1bw1bt9iid3l6y8e"
	store := Groups(t.TempDir())
	r, err := NewGroupReader(Group{Name: "room", Members: []string{name}}, store, GroupReadOptions{Window: 1}, func(GroupMessage) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	id := func(s string) mvds.MessageID { return sha256.Sum256([]byte(s)) }
	parent := id("parent")
	r.m.AddLive(0, id("a"), nil, Message{})
	r.m.AddLive(0, id("b"), []mvds.MessageID{id("a")}, Message{})
	var st GroupStats
	if err := r.drain(&st); err != nil || st.Messages != 2 {
		t.Fatalf("delivered %d: %v", st.Messages, err)
	}
	if r.m.Has(id("a")) || !r.m.Has(id("b")) {
		t.Fatal("with a window of 1, a is forgotten and b kept")
	}
	r.enqueue(0, 1, id("c"), r.m.addNode(0, id("c"), []mvds.MessageID{parent}, Message{Seq: 1}, false))
	for k, s := range []string{"a", "b"} {
		r.enqueue(0, uint64(k+2), id(s), r.m.addNode(0, id(s), nil, Message{Seq: uint64(k + 2)}, false))
	}
	r.read[0] = Cursor{Seq: 3, ID: id("b")}
	if err := r.drain(&st); err != nil {
		t.Fatal(err)
	}
	if c := r.saved[0]; c.Seq != 0 {
		t.Fatalf("the cursor moved to %d while c waits", c.Seq)
	}
	r.m.AddLive(-1, parent, nil, Message{})
	if err := r.drain(&st); err != nil {
		t.Fatal(err)
	}
	if c := r.saved[0]; c.Seq != 3 {
		t.Fatalf("the cursor is at %d, want 3: past c, a (forgotten) and b", c.Seq)
	}
}

// BenchmarkMergeHeld measures what the merge holds per message waiting: a
// group catch-up holds every message read until all members were read. 50
// members of 1,000 messages of 100 bytes, each naming the previous
// member's last message, added as a reader adds them (each body its own
// allocation, as decoded); it reports the live heap per message held.
func BenchmarkMergeHeld(b *testing.B) {
	const members, each = 50, 1000
	ids := make([][]mvds.MessageID, members)
	for a := range ids {
		ids[a] = make([]mvds.MessageID, each)
		for i := range ids[a] {
			var seed [8]byte
			binary.LittleEndian.PutUint64(seed[:], uint64(a*each+i))
			ids[a][i] = sha256.Sum256(seed[:])
		}
	}
	var held float64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := NewMerger()
		// The last member first: nothing is ready until member 0 is added.
		for a := members - 1; a >= 0; a-- {
			for k, id := range ids[a] {
				var parents []mvds.MessageID
				if k == 0 && a > 0 {
					parents = []mvds.MessageID{ids[a-1][each-1]}
				}
				body := make([]byte, 100)
				binary.BigEndian.PutUint64(body, uint64(a*each+k))
				m.Add(a, id, parents, Message{Seq: uint64(k + 1), ID: id, BodySize: 100, Message: mvds.Message{GroupID: ids[0][0][:], Timestamp: 1, Body: body}})
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held += float64(after.HeapAlloc-before.HeapAlloc) / (members * each)
		n := 0
		for {
			gm, ok := m.Next()
			if !ok {
				break
			}
			if binary.BigEndian.Uint64(gm.Message.Body) != uint64(gm.Author*each+int(gm.Message.Seq)-1) {
				b.Fatalf("message %d of member %d: wrong body", gm.Message.Seq, gm.Author)
			}
			n++
		}
		if n != members*each {
			b.Fatalf("delivered %d of %d", n, members*each)
		}
	}
	b.ReportMetric(held/float64(b.N), "held-B/msg")
}

// TestMergeKeepsWhatItDelivers: the merge copies bodies and parents (the
// caller may reuse its buffers), and gives back each message's group,
// metadata and body size as added, also the rare ones.
func TestMergeKeepsWhatItDelivers(t *testing.T) {
	m := NewMerger()
	id := func(s string) mvds.MessageID { return sha256.Sum256([]byte(s)) }
	buf := []byte("first")
	parents := []mvds.MessageID{id("x")}
	md := &mvds.Metadata{Parents: [][]byte{[]byte("p")}}
	m.Add(0, id("a"), nil, Message{Seq: 1, BodySize: 5, Message: mvds.Message{GroupID: []byte("g"), Timestamp: 7, Body: buf}})
	m.Add(0, id("b"), parents, Message{Seq: 2, BodySize: 1 << 30, Message: mvds.Message{GroupID: []byte("other"), Metadata: md}})
	m.Add(1, id("x"), nil, Message{Seq: 1, Message: mvds.Message{Body: []byte("no group")}})
	copy(buf, "XXXXX")
	parents[0] = id("y")
	var got []GroupMessage
	for {
		gm, ok := m.Next()
		if !ok {
			break
		}
		got = append(got, gm)
	}
	if len(got) != 3 {
		t.Fatalf("delivered %d of 3", len(got))
	}
	by := map[mvds.MessageID]GroupMessage{}
	for _, gm := range got {
		by[gm.ID] = gm
	}
	a, x, b := by[id("a")], by[id("x")], by[id("b")]
	if a.ID != id("a") || string(a.Message.Body) != "first" || string(a.Message.GroupID) != "g" || a.Message.Timestamp != 7 || a.Message.BodySize != 5 || a.Message.Metadata != nil {
		t.Fatalf("a: %+v", a.Message)
	}
	if x.ID != id("x") || x.Message.GroupID != nil || string(x.Message.Body) != "no group" {
		t.Fatalf("x: %+v", x.Message)
	}
	if b.ID != id("b") || string(b.Message.GroupID) != "other" || b.Message.Metadata != md || b.Message.BodySize != 1<<30 || b.Message.Body != nil || len(b.Parents) != 1 || b.Parents[0] != id("x") {
		t.Fatalf("b: %+v, parents %v", b.Message, b.Parents)
	}
	// A body delivered cannot be appended to over its neighbour's.
	if cap(a.Message.Body) != len(a.Message.Body) {
		t.Fatalf("a body's capacity %d runs past its length %d", cap(a.Message.Body), len(a.Message.Body))
	}
}
