package mvds

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// SimConfig describes a simulation: Nodes nodes in one group, node 0
// sending Messages messages at epoch 0, over a network shaped by Net.
type SimConfig struct {
	Mode      Mode
	Nodes     int
	Messages  int
	Runs      int
	Seed      uint64 // run r uses Seed+r
	Net       NetConfig
	Backoff   Backoff
	MaxEpochs int64 // give up after this many; default 10,000
}

// RunResult is what one run measured.
type RunResult struct {
	Run             int    `json:"run"`
	Seed            uint64 `json:"seed"`
	EpochsDelivered int64  `json:"epochs_until_all_delivered"`
	EpochsAcked     int64  `json:"epochs_until_all_acked"`
	Payloads        int    `json:"payloads_sent"`
	Bytes           int    `json:"bytes_sent"`
	Copies          int    `json:"message_copies_sent"`
	DeliveredTwice  int    `json:"copies_delivered_twice"`
	RecordsLeft     int    `json:"records_left"`
	RecordsDropped  int    `json:"records_dropped"`
	Complete        bool   `json:"complete"`
}

// Summary aggregates runs.
type Summary struct {
	Runs          int     `json:"runs"`
	DeliveredMean float64 `json:"epochs_until_all_delivered_mean"`
	DeliveredMax  int64   `json:"epochs_until_all_delivered_max"`
	AckedMean     float64 `json:"epochs_until_all_acked_mean"`
	AckedMax      int64   `json:"epochs_until_all_acked_max"`
	PayloadsMean  float64 `json:"payloads_sent_mean"`
	BytesMean     float64 `json:"bytes_sent_mean"`
	// CopiesPerMessage is MESSAGE copies sent per message and receiving
	// node: 1 when every copy arrives and none is sent twice.
	CopiesPerMessage float64 `json:"copies_per_message"`
	// BytesPerMessage is bytes sent per message and receiving node.
	BytesPerMessage float64 `json:"bytes_per_message"`
	DeliveredTwice  int     `json:"copies_delivered_twice"`
	RecordsLeft     int     `json:"records_left"`
	RecordsDropped  int     `json:"records_dropped"`
	Incomplete      int     `json:"incomplete_runs"`
}

// Simulate runs cfg.Runs seeded runs.
func Simulate(cfg SimConfig) ([]RunResult, Summary, error) {
	if cfg.Nodes < 2 || cfg.Messages < 1 || cfg.Runs < 1 {
		return nil, Summary{}, fmt.Errorf("mvds: sim: need at least 2 nodes, 1 message and 1 run")
	}
	if cfg.Net.Loss < 0 || cfg.Net.Loss >= 1 {
		return nil, Summary{}, fmt.Errorf("mvds: sim: loss %v, want 0 <= loss < 1", cfg.Net.Loss)
	}
	if cfg.MaxEpochs <= 0 {
		cfg.MaxEpochs = 10_000
	}
	var results []RunResult
	for r := range cfg.Runs {
		res, err := simulateRun(cfg, r)
		if err != nil {
			return nil, Summary{}, err
		}
		results = append(results, res)
	}
	return results, summarize(results, cfg.Messages*(cfg.Nodes-1)), nil
}

func simulateRun(cfg SimConfig, run int) (RunResult, error) {
	seed := cfg.Seed + uint64(run)
	res := RunResult{Run: run, Seed: seed, EpochsDelivered: -1, EpochsAcked: -1}
	netCfg := cfg.Net
	netCfg.Seed = seed
	net := NewMemNet(netCfg)
	group := make([]byte, 32)
	group[0] = 0x11
	nodes := make([]*Node, cfg.Nodes)
	ids := make([]PeerID, cfg.Nodes)
	for i := range nodes {
		ids[i] = PeerID(fmt.Sprintf("node-%d", i))
		nodes[i] = NewNode(Config{ID: ids[i], Mode: cfg.Mode, Backoff: cfg.Backoff})
	}
	for i, n := range nodes {
		for j := range nodes {
			if i != j {
				n.AddPeer(group, ids[j])
			}
		}
	}
	byID := map[PeerID]*Node{}
	for i, n := range nodes {
		byID[ids[i]] = n
	}
	want := map[MessageID]bool{}
	for k := range cfg.Messages {
		m := Message{GroupID: group, Timestamp: int64(k), Body: []byte(fmt.Sprintf("message %d", k))}
		want[nodes[0].Send(m)] = true
	}
	delivered := make([]map[MessageID]bool, cfg.Nodes)
	for i := range delivered {
		delivered[i] = map[MessageID]bool{}
	}
	allDelivered := func() bool {
		for i := 1; i < cfg.Nodes; i++ {
			if len(delivered[i]) < len(want) {
				return false
			}
		}
		return true
	}
	for epoch := int64(1); epoch <= cfg.MaxEpochs; epoch++ {
		for i, n := range nodes {
			n.Tick()
			rd := n.Ready()
			for _, to := range slices.Sorted(maps.Keys(rd.Payloads)) {
				net.Send(epoch, ids[i], to, rd.Payloads[to])
			}
			n.Advance()
		}
		err := net.Deliver(epoch, func(from, to PeerID, p Payload) error {
			n := byID[to]
			if err := n.Step(from, p); err != nil {
				return err
			}
			idx := slices.Index(ids, to)
			for _, m := range n.Ready().Deliver {
				id := m.ID()
				if delivered[idx][id] {
					res.DeliveredTwice++
				}
				delivered[idx][id] = true
			}
			n.Advance()
			return nil
		})
		if err != nil {
			return res, err
		}
		if res.EpochsDelivered < 0 && allDelivered() {
			res.EpochsDelivered = epoch
		}
		left := 0
		for _, n := range nodes {
			left += len(n.recs)
		}
		if res.EpochsDelivered >= 0 && left == 0 && net.Pending() == 0 {
			res.EpochsAcked = epoch
			break
		}
	}
	for _, n := range nodes {
		res.RecordsLeft += len(n.recs)
		res.RecordsDropped += n.Dropped
	}
	res.Payloads, res.Bytes, res.Copies = net.Payloads, net.Bytes, net.Messages
	res.Complete = res.EpochsDelivered >= 0 && res.EpochsAcked >= 0 && res.RecordsDropped == 0
	return res, nil
}

// summarize aggregates runs that each had deliveries messages to deliver
// (messages times receiving nodes).
func summarize(rs []RunResult, deliveries int) Summary {
	s := Summary{Runs: len(rs)}
	for _, r := range rs {
		s.DeliveredTwice += r.DeliveredTwice
		s.RecordsLeft += r.RecordsLeft
		s.RecordsDropped += r.RecordsDropped
		if !r.Complete {
			s.Incomplete++
			continue
		}
		s.DeliveredMean += float64(r.EpochsDelivered)
		s.AckedMean += float64(r.EpochsAcked)
		s.DeliveredMax = max(s.DeliveredMax, r.EpochsDelivered)
		s.AckedMax = max(s.AckedMax, r.EpochsAcked)
		s.PayloadsMean += float64(r.Payloads)
		s.BytesMean += float64(r.Bytes)
		s.CopiesPerMessage += float64(r.Copies)
	}
	if done := float64(len(rs) - s.Incomplete); done > 0 {
		s.DeliveredMean = math.Round(100*s.DeliveredMean/done) / 100
		s.AckedMean = math.Round(100*s.AckedMean/done) / 100
		s.PayloadsMean = math.Round(s.PayloadsMean / done)
		s.BytesPerMessage = math.Round(100*s.BytesMean/done/float64(deliveries)) / 100
		s.BytesMean = math.Round(s.BytesMean / done)
		s.CopiesPerMessage = math.Round(1000*s.CopiesPerMessage/done/float64(deliveries)) / 1000
	}
	return s
}
