package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"rlog/mvds"
)

func (a *app) mvdsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mvds", Short: "MVDS tools: simulation",
		Example: `  rlog mvds sim --mode batch --loss 0.3 --runs 100`}
	var mode string
	var loss, dup float64
	var messages, nodes, runs, delay int
	var seed uint64
	var reorder, asJSON bool
	sim := &cobra.Command{
		Use:   "sim",
		Short: "Simulate MVDS between nodes over a lossy in-memory network",
		Long: `Run seeded simulations: --nodes nodes in one group, node 0 sends --messages messages
at epoch 0, every payload is lost with probability --loss (and duplicated, delayed,
reordered as asked). Per run and summarised: epochs until every node has every message,
epochs until every record is acknowledged, payloads and bytes sent, copies delivered
twice (must be 0) and records left (must be 0). Run r uses seed --seed + r, so a run is
reproduced exactly by its seed.`,
		Example: `  rlog mvds sim --mode batch --loss 0.3 --runs 100
  rlog mvds sim --mode interactive --nodes 5 --loss 0.5 --delay 3 --reorder --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := parseMode(mode)
			if err != nil {
				return err
			}
			results, sum, err := mvds.Simulate(mvds.SimConfig{Mode: m, Nodes: nodes, Messages: messages, Runs: runs, Seed: seed,
				Net: mvds.NetConfig{Loss: loss, Duplicate: dup, MaxDelay: delay, Reorder: reorder}})
			if err != nil {
				return usageError{err}
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				for _, r := range results {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return enc.Encode(map[string]any{"summary": sum})
			}
			fmt.Fprintf(a.stdout, "%s, %d nodes, %d messages, %.0f%% loss, %d runs from seed %d\n", mode, nodes, messages, 100*loss, runs, seed)
			fmt.Fprintf(a.stdout, "epochs until all delivered   mean %.2f, worst %d\n", sum.DeliveredMean, sum.DeliveredMax)
			fmt.Fprintf(a.stdout, "epochs until all acknowledged mean %.2f, worst %d\n", sum.AckedMean, sum.AckedMax)
			fmt.Fprintf(a.stdout, "payloads sent                mean %.0f (%.0f bytes)\n", sum.PayloadsMean, sum.BytesMean)
			fmt.Fprintf(a.stdout, "per message and receiver     %.3f MESSAGE copies, %.1f bytes\n", sum.CopiesPerMessage, sum.BytesPerMessage)
			fmt.Fprintf(a.stdout, "copies delivered twice       %d\nrecords left                 %d\nincomplete runs              %d\n", sum.DeliveredTwice, sum.RecordsLeft, sum.Incomplete)
			return nil
		},
	}
	f := sim.Flags()
	f.StringVar(&mode, "mode", "batch", "batch or interactive")
	f.Float64Var(&loss, "loss", 0.3, "probability that a payload is lost")
	f.Float64Var(&dup, "duplicate", 0, "probability that a payload is delivered twice")
	f.IntVar(&delay, "delay", 0, "payloads are delayed 0..N extra epochs")
	f.BoolVar(&reorder, "reorder", false, "deliver payloads of an epoch in random order")
	f.IntVar(&messages, "messages", 100, "messages node 0 sends at epoch 0")
	f.IntVar(&nodes, "nodes", 2, "nodes in the group")
	f.IntVar(&runs, "runs", 100, "seeded runs")
	f.Uint64Var(&seed, "seed", 1, "seed of the first run")
	f.BoolVar(&asJSON, "json", false, "one JSON object per run, then the summary")
	cmd.AddCommand(sim)
	return cmd
}

// parseMode reads a --mode flag.
func parseMode(s string) (mvds.Mode, error) {
	switch s {
	case "batch":
		return mvds.Batch, nil
	case "interactive":
		return mvds.Interactive, nil
	}
	return 0, usagef("--mode %q: want batch or interactive", s)
}

// parseGroup reads --group (hex) and --group-name (hashed); dflt when neither.
func parseGroup(groupHex, groupName string, dflt []byte) ([]byte, error) {
	switch {
	case groupHex != "" && groupName != "":
		return nil, usagef("give --group or --group-name, not both")
	case groupHex != "":
		g, err := hex.DecodeString(groupHex)
		if err != nil || len(g) != 32 {
			// The references pad shorter ids for membership: rlog would
			// not relay with them. A group id is 32 bytes.
			return nil, usagef("--group %q is not a group id: 64 hex digits (32 bytes), or use --group-name TEXT", groupHex)
		}
		return g, nil
	case groupName != "":
		g := sha256.Sum256([]byte(groupName))
		return g[:], nil
	}
	return dflt, nil
}
