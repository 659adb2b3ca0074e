package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"rlog/remotelog"
)

func (a *app) repoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "What the repo holds on disk, and reclaiming what nothing references",
		Long: `'rlog repo stat' counts the repo's blocks: its own log's, the other logs' it keeps, and
garbage; 'rlog repo gc' removes the garbage, as 'ipfs repo stat' and 'ipfs repo gc' do.`,
		Example: `  rlog repo stat
  rlog repo gc`,
	}
	cmd.AddCommand(a.repoStatCmd(), a.repoGCCmd())
	return cmd
}

func (a *app) repoStatCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stat",
		Short: "Count the blocks of the own log, of other logs, and garbage",
		Long: `Walk every log the repo holds and count the blocks of its store:

  own log     blocks reached from this repo's published head (its pages, index nodes
              and payloads; sealed messages live only there), the head it replaced,
              and the payloads its journal names
  other logs  blocks reached from the records of other logs in the repo (kept with
              'rlog keep' or 'fetch --keep', private logs), not counted above
  garbage     blocks nothing reaches: heads and tail pieces a publish replaced, index
              nodes rewritten, blocks of a keep that was interrupted ('rlog repo gc'
              removes them)

and the bytes on disk of the journal (log/: messages not sealed yet), the block store
(blocks/, its files, so LevelDB's own overhead and space not yet compacted included)
and the block cache. Bytes of blocks are their contents. While a node runs, it runs
there. --json keys: own_log, other_logs and garbage ({blocks, bytes}), logs,
journal_bytes, store_bytes, cache_bytes, missing (blocks a kept log's record reaches
that are not here).`,
		Example: `  rlog repo stat
  rlog repo stat --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWriter(cmd.Context(), false, func(repo *remotelog.Repo, w *remotelog.Writer) error {
				st, err := repo.Stat(cmd.Context(), w)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, st)
				}
				fmt.Fprintf(a.stdout, "own log     %d blocks, %s\nother logs  %d blocks, %s (%d logs)\ngarbage     %d blocks, %s\njournal     %s on disk\nstore       %s on disk\ncache       %s on disk\n",
					st.OwnLog.Blocks, mib(st.OwnLog.Bytes), st.OtherLogs.Blocks, mib(st.OtherLogs.Bytes), st.Logs,
					st.Garbage.Blocks, mib(st.Garbage.Bytes), mib(st.JournalBytes), mib(st.StoreBytes), mib(st.CacheBytes))
				if st.Missing > 0 {
					fmt.Fprintf(a.stderr, "%d blocks of kept logs are missing here (a keep not finished: 'rlog keep' completes them)\n", st.Missing)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the counts as JSON")
	return cmd
}

func (a *app) repoGCCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove the blocks nothing references",
		Long: `Remove from the repo's block store every block that 'rlog repo stat' counts as
garbage: not reached from this repo's own log (its published head, the head it replaced,
the payloads its journal names), nor from the record of another log the repo keeps, nor
stored while the collection runs. Then the store is compacted, so the space goes back to
the file system.

It is safe beside a running node and a publish: it takes the repo like append and
publish do (while a node runs, it runs in the node, between its publishes), and a keep
that is storing a log waits for it before it stores the log's record. A repo whose own
published log is not whole in its store is refused: nothing is removed ('rlog check'
says what is missing). --json keys: removed ({blocks, bytes}), kept (blocks),
store_bytes_before, store_bytes_after (the block store's files on disk).`,
		Example: `  rlog repo gc
  rlog repo gc --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withWriter(cmd.Context(), false, func(repo *remotelog.Repo, w *remotelog.Writer) error {
				res, err := repo.GC(cmd.Context(), w)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a.stdout, res)
				}
				fmt.Fprintf(a.stdout, "removed     %d blocks, %s\nkept        %d blocks\nstore       %s on disk (was %s)\n",
					res.Removed.Blocks, mib(res.Removed.Bytes), res.Kept, mib(res.StoreAfter), mib(res.StoreBefore))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// mib writes a byte count for people.
func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
