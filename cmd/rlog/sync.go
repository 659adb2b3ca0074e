package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"rlog/remotelog"
)

// syncStatus is what `rlog sync status` prints.
type syncStatus = remotelog.SyncStatus

type recordStatus = remotelog.RecordStatus

type peerStatus = remotelog.PeerStatus

func (a *app) syncCmd() *cobra.Command {
	nf := nodeFlags{sync: true}
	var asJSON bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "sync --listen MULTIADDR [--peer MULTIADDR/p2p/ID ...]",
		Short: "Sync messages directly with peers that are online now (MVDS)",
		Long: `Run an MVDS node on libp2p (protocol /rlog/mvds/1.0.0). Its identity is this repo's
key, so its peer id names the same key as its log. It sends every message of the group
in the local log to its peers, and everything appended while it runs ('rlog append' in
this repo goes through it), retransmitting until each peer acknowledges; it prints what
peers send (--json: the lines of 'rlog fetch --json'), each message once, also across
restarts: its state is kept in the repo. Peers that already have a message (from the
remote log) acknowledge it, so it is not sent again.

Each side names the other with --peer MULTIADDR/p2p/PEERID; 'rlog id' prints the peer
id. --from also reads the peers' remote logs (a peer id names the same key as its log),
so messages read there are acknowledged, never delivered twice.

'rlog sync status' (in the same repo, while it runs) shows its peers and what is still
owed to each.`,
		Example: `  rlog id --repo ~/b        # B's peer id, 12D3KooW...
  rlog sync --listen /ip4/0.0.0.0/tcp/4001 \
      --peer /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW... --group-name room
  rlog append --group-name room "hi"      # while sync runs: logged and sent
  rlog sync status --wait 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runNode(cmd, nf) },
	}
	a.syncFlags(cmd.Flags(), &nf)
	a.apiFlagOn(cmd)
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the peers of the running sync node and what is owed to each",
		Long: `Ask the 'rlog sync' running in this repo (over its socket in the repo) for its state:
its peer id, the group it syncs, its epoch, and for each peer whether it is connected
and how many records (messages, offers, requests) it still owes that peer. A
record stays owed until the peer acknowledges it; MVDS retransmits it meanwhile.

--wait D waits up to D until nothing is owed to anyone (every peer has acknowledged
everything), then prints the status; it fails with exit 1 if something is still owed
after D. --json prints the status as one object (docs/CLI.md); records lists each
owed record.`,
		Example: `  rlog sync status
  rlog sync status --wait 30s     # e.g. before stopping sync
  rlog sync status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.repoDir()
			if err != nil {
				return err
			}
			owner, err := remotelog.DialControl(dir)
			if err != nil {
				return failf(err, "no 'rlog sync' runs in %s: start it first", dir)
			}
			var st syncStatus
			deadline := time.Now().Add(wait)
			for {
				st = syncStatus{} // each poll from scratch: absent fields are empty now
				if err := owner.Status(cmd.Context(), &st); err != nil {
					return err
				}
				if wait == 0 || len(st.Records) == 0 {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("still %s owed to peers after %s", plural(len(st.Records), "record"), wait)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
			if asJSON {
				return writeJSON(a.stdout, st)
			}
			fmt.Fprintf(a.stdout, "node      %s\ngroup     %s\nepoch     %d\n", st.ID, st.Group, st.Epoch)
			for _, p := range st.Peers {
				fmt.Fprintf(a.stdout, "peer      %s connected=%v pending=%d\n", p.ID, p.Connected, st.Pending[p.ID])
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	status.Flags().DurationVar(&wait, "wait", 0, "wait up to this long until every peer has acknowledged everything")
	cmd.AddCommand(status)
	return cmd
}

func (a *app) idCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print this repo's peer id (for sync --peer) and its log's name (for fetch)",
		Long: `Print the two names of this repo's key: its libp2p peer id (12D3KooW...), which peers
give to 'rlog sync --peer MULTIADDR/p2p/PEERID', and the IPNS name of its log (k51...),
which readers give to fetch, follow, keep and backup. Both name the same Ed25519 key.
--json prints {"peer_id": ..., "name": ...}.`,
		Example: `  rlog id
  rlog id --json
  rlog sync --group-name room \
      --peer /ip4/10.0.0.2/tcp/4001/p2p/$(rlog id --repo ~/b --json | jq -r .peer_id)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.repoDir()
			if err != nil {
				return err
			}
			name, err := remotelog.ReadName(dir)
			if err != nil {
				return noRepo(dir, err)
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"peer_id": name.Peer().String(), "name": name.String()})
			}
			fmt.Fprintf(a.stdout, "peer id   %s\nlog name  %s\n", name.Peer(), name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print both names as JSON")
	return cmd
}
