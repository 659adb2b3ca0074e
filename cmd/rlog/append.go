package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) appendCmd() *cobra.Command {
	var groupHex, groupName, file string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "append [BODY...]",
		Short: "Append messages to the local log; returns once they are on disk",
		Long: `Append one message per argument, or one per line of standard input when there
is none, or the whole of --file as one message. Prints the sequence number and id of
each. The messages are durable when the command returns; run 'rlog publish' to make
them readable.

The group is the log's default group unless --group (hex) or --group-name (a text,
hashed with SHA-256 to 32 bytes) names another.`,
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
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				bodies = [][]byte{b}
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
				if err := sc.Err(); err != nil {
					return fmt.Errorf("read standard input: %w", err)
				}
			}
			if len(bodies) == 0 {
				return usagef("nothing to append: give bodies as arguments, lines on standard input, or --file")
			}
			group, err := parseGroup(groupHex, groupName, nil)
			if err != nil {
				return err
			}
			// Appending touches only the local log, not the backend.
			return a.withLogWriter(cmd.Context(), false, func(cfg remotelog.Config, w logWriter) error {
				if group == nil {
					group = cfg.DefaultGroup()
				}
				out, err := w.Append(cmd.Context(), group, bodies)
				if err != nil {
					return err
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
	return cmd
}
