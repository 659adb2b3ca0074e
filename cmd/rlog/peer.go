package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) peerCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "peer",
		Short: "Add, remove, pause and list the MVDS peers kept in the repo's config",
		Long: `The peers a node syncs with (rlog sync, rlog run --sync) are kept in the repo's
config.json, across restarts. While a node runs, a change takes effect in it at once
(the command runs in the node, over the repo's control socket); otherwise at its next
start. A peer is named by its multiaddr ending in /p2p/PEERID ('rlog id' prints a peer
id); rm, pause, resume and interval also take the peer id alone.

A paused peer is owed what it was owed, and sent nothing until resumed. An interval of N
syncs with the peer every N epochs only (a peer on a metered link).`,
		Example: `  rlog peer add /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW...
  rlog peer pause 12D3KooW...
  rlog peer interval 12D3KooW... 10
  rlog peer ls --json`,
	}
	change := func(use, short, example string, nargs int, op func(args []string) (remotelog.PeerChange, error)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Example: example, Args: cobra.ExactArgs(nargs),
			RunE: func(cmd *cobra.Command, args []string) error {
				pc, err := op(args)
				if err != nil {
					return err
				}
				var p remotelog.PeerConfig
				if a.node != nil {
					p, err = a.node.ChangePeer(cmd.Context(), pc)
				} else {
					p, err = a.changePeerOffline(cmd, pc)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s %s\n", pc.Op, peerLine(p))
				return nil
			},
		}
	}
	one := func(op string) func([]string) (remotelog.PeerChange, error) {
		return func(args []string) (remotelog.PeerChange, error) {
			return remotelog.PeerChange{Op: op, Peer: args[0]}, nil
		}
	}
	ls := &cobra.Command{
		Use: "ls", Short: "List the peers in the repo's config", Args: cobra.NoArgs,
		Example: "  rlog peer ls\n  rlog peer ls --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []remotelog.PeerConfig
			if a.node != nil {
				ps = a.node.Peers()
			} else {
				_, cfg, err := a.repoConfig()
				if err != nil {
					return err
				}
				ps = cfg.Peers
			}
			if asJSON {
				if ps == nil {
					ps = []remotelog.PeerConfig{}
				}
				return writeJSON(a.stdout, ps)
			}
			for _, p := range ps {
				fmt.Fprintln(a.stdout, peerLine(p))
			}
			return nil
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print the peers as a JSON array")
	cmd.AddCommand(
		change("add MULTIADDR/p2p/PEERID", "Add a peer (or give a known peer its new address)", "  rlog peer add /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW...", 1, one("add")),
		change("rm PEER", "Remove a peer: nothing more is sent to it", "  rlog peer rm 12D3KooW...", 1, one("rm")),
		change("pause PEER", "Send a peer nothing until it is resumed", "  rlog peer pause 12D3KooW...", 1, one("pause")),
		change("resume PEER", "Sync with a paused peer again", "  rlog peer resume 12D3KooW...", 1, one("resume")),
		change("interval PEER EPOCHS", "Sync with a peer every EPOCHS epochs only (0 or 1: every epoch)", "  rlog peer interval 12D3KooW... 10", 2, func(args []string) (remotelog.PeerChange, error) {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n < 0 {
				return remotelog.PeerChange{}, usagef("interval %q: want a number of epochs, 0 or more", args[1])
			}
			return remotelog.PeerChange{Op: "interval", Peer: args[0], Interval: n}, nil
		}),
		ls)
	return cmd
}

// changePeerOffline changes the repo's config while no node runs.
func (a *app) changePeerOffline(cmd *cobra.Command, pc remotelog.PeerChange) (remotelog.PeerConfig, error) {
	repo, err := a.openRepo(cmd.Context())
	if err != nil {
		return remotelog.PeerConfig{}, err
	}
	defer repo.Close()
	return remotelog.ChangePeers(repo, func(ps []remotelog.PeerConfig) ([]remotelog.PeerConfig, remotelog.PeerConfig, error) {
		return remotelog.ApplyPeerChange(ps, pc)
	})
}

// peerLine is a peer in one line: its address, paused, interval.
func peerLine(p remotelog.PeerConfig) string {
	s := p.Addr
	if p.Paused {
		s += " paused"
	}
	if p.Interval > 1 {
		s += fmt.Sprintf(" interval=%d", p.Interval)
	}
	return s
}
