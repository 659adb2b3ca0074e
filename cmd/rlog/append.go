package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"rlog/mvds"
	"rlog/remotelog"
)

func (a *app) appendCmd() *cobra.Command {
	var groupHex, groupName, file string
	var asJSON, ephemeral bool
	cmd := &cobra.Command{
		Use:   "append [BODY...]",
		Short: "Append messages to the local log; returns once they are on disk",
		Long: `Append one message per argument, or one per line of standard input when there
is none, or the whole of --file as one message. Prints the sequence number and id of
each. The messages are durable when the command returns (all of them, or none, with
an error); run 'rlog publish' to make them readable.

A message body may be up to 4 GiB with --file, which streams the file: a large body
(over 1 MiB) is stored once, in the repo's block store, never held in memory. A line of
standard input may be up to 64 MiB. Readers save large bodies with 'fetch --out DIR'.

The group is the log's default group unless --group (hex) or --group-name (a text,
hashed with SHA-256 to 32 bytes) names another. When the repo keeps a group of that
name ('rlog group'), each message names in its MVDS metadata the newest messages of the
group this repo has seen (its parents: what 'rlog fetch --group' last read, and this
log's last message in the group), so readers deliver it after them.

--ephemeral sends each body instead as an ephemeral MVDS message (4/MVDS-META) through the
node that runs on this repo ('rlog run --sync', 'rlog sync') to its peers online now: once,
never logged, stored or retransmitted. It prints each message's id.`,
		Example: `  rlog append "hello" "world"
  printf 'one\ntwo\n' | rlog append
  rlog append --file photo.jpg
  rlog append --group-name room --json "hi"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" && len(args) > 0 {
				return usagef("give bodies as arguments or --file, not both")
			}
			var bodies [][]byte
			switch {
			case file != "":
				if _, err := os.Stat(file); err != nil {
					return err
				}
			case len(args) > 0:
				for _, s := range args {
					bodies = append(bodies, []byte(s))
				}
			default:
				sc := bufio.NewScanner(a.stdin)
				sc.Buffer(make([]byte, 64<<10), 64<<20)
				for sc.Scan() {
					bodies = append(bodies, append([]byte(nil), sc.Bytes()...))
				}
				if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
					return fmt.Errorf("read standard input: line %d is over 64 MiB: append a large body with --file (nothing was appended)", len(bodies)+1)
				} else if err != nil {
					return fmt.Errorf("read standard input: %w (nothing was appended)", err)
				}
			}
			if len(bodies) == 0 && file == "" {
				return usagef("nothing to append: give bodies as arguments, lines on standard input, or --file")
			}
			if ephemeral {
				if file != "" || groupHex != "" || groupName != "" {
					return usagef("--ephemeral goes to the running node's sync group: give bodies only, no --file or --group")
				}
				return a.sendEphemeral(cmd, bodies, asJSON)
			}
			group, err := parseGroup(groupHex, groupName, nil)
			if err != nil {
				return err
			}
			// A group kept in the repo: each message names the group's
			// heads as its parents, and becomes its head.
			var md *mvds.Metadata
			var groups remotelog.GroupStore
			if groupName != "" {
				dir, err := a.repoDir()
				if err != nil {
					return err
				}
				groups = remotelog.Groups(dir)
				if g, err := groups.Get(groupName); err == nil {
					heads, err := g.HeadIDs()
					if err != nil {
						return err
					}
					if file != "" && len(heads) > 0 {
						return usagef("a large message (--file) cannot name parents yet: append it outside the group's conversation (--group)")
					}
					md = &mvds.Metadata{}
					for _, h := range heads {
						md.Parents = append(md.Parents, append([]byte(nil), h[:]...))
					}
				} else if !errors.Is(err, remotelog.ErrNoGroup) {
					return err
				}
			}
			// Appending touches only the local log, not the backend.
			return a.withLogWriter(cmd.Context(), false, func(cfg remotelog.Config, w logWriter) error {
				if group == nil {
					group = cfg.DefaultGroup()
				}
				var out []remotelog.Appended
				if file != "" {
					m, err := w.AppendFile(cmd.Context(), group, file)
					if err != nil {
						return err
					}
					out = append(out, m)
				} else if md != nil && len(md.Parents) > 0 {
					if out, err = w.AppendMeta(cmd.Context(), group, md, bodies); err != nil {
						return err
					}
				} else if out, err = w.Append(cmd.Context(), group, bodies); err != nil {
					return err
				}
				if md != nil && len(out) > 0 {
					last := out[len(out)-1].ID
					if err := groups.Update(groupName, func(g *remotelog.Group) error {
						g.Heads = []string{last.String()}
						return nil
					}); err != nil {
						return fmt.Errorf("appended, but saving the group's heads failed: %w", err)
					}
				}
				if owner, ok := w.(*remotelog.ControlClient); ok {
					// rlog sync sends one group: say so when these went elsewhere.
					var st struct{ Group string }
					if owner.Status(cmd.Context(), &st) == nil && st.Group != "" && st.Group != hex.EncodeToString(group) {
						fmt.Fprintf(a.stderr, "note: appended to group %.16s..., which the running 'rlog sync' (group %.16s...) does not send; it is in the log only (sync sends the group given by its --group-name)\n", hex.EncodeToString(group), st.Group)
					}
				}
				for _, m := range out {
					if asJSON {
						b, _ := json.Marshal(map[string]any{"seq": m.Seq, "id": m.ID.String(), "timestamp": rfc3339(time.Unix(m.Timestamp, 0))})
						fmt.Fprintf(a.stdout, "%s\n", b)
					} else {
						fmt.Fprintf(a.stdout, "%d\t%s\n", m.Seq, m.ID)
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&groupHex, "group", "", "MVDS group id, hex")
	f.StringVar(&groupName, "group-name", "", "MVDS group named by a text (SHA-256 of it)")
	f.StringVar(&file, "file", "", "append this file's content as one message")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per message")
	f.BoolVar(&ephemeral, "ephemeral", false, "send each body once over MVDS to the running node's peers (typing, presence), never into the log; needs 'rlog run --sync' or 'rlog sync'")
	return cmd
}

// sendEphemeral is append --ephemeral: through the node that owns the repo.
func (a *app) sendEphemeral(cmd *cobra.Command, bodies [][]byte, asJSON bool) error {
	send := func(b []byte) (string, error) {
		id, err := a.node.SendEphemeral(b)
		return id.String(), err
	}
	if a.node == nil {
		dir, err := a.repoDir()
		if err != nil {
			return err
		}
		if !ownerListens(dir) {
			return failf(nil, "--ephemeral: no node runs on %s: an ephemeral message goes to peers online now, through 'rlog run --sync' or 'rlog sync'", dir)
		}
		owner, err := remotelog.DialControl(dir)
		if err != nil {
			return err
		}
		send = func(b []byte) (string, error) { return owner.SendEphemeral(cmd.Context(), b) }
	}
	for _, b := range bodies {
		id, err := send(b)
		if err != nil {
			return err
		}
		if asJSON {
			if err := writeJSONLine(a.stdout, map[string]any{"id": id, "ephemeral": true}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(a.stdout, "-\t%s\n", id)
		}
	}
	return nil
}
