package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/ipfs/boxo/ipns"
	"github.com/spf13/cobra"

	"rlog/namesys"
	"rlog/remotelog"
)

func (a *app) groupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Create, list and change the group conversations kept in the repo",
		Long: `A group is a conversation of many writers, each with a log of its own: a name
(whose SHA-256 is its MVDS group id, as 'append --group-name NAME' has it) and the
names of its members' logs, kept in the repo's groups.json. Add your own log's name
('rlog id' prints it) to read your messages in the group too.

'rlog append --group-name NAME' then names, in each message's MVDS metadata, the
newest messages of the group this repo has seen (its parents), and 'rlog fetch --group
NAME' reads every member's log and prints their messages merged, each after its
parents, in the same order for every reader that read the same messages (with
--stable, in one order for every reader, whenever it reads: docs/GROUPS.md).

A walk through, three writers (each repo also adds the others' names):

  rlog group create room
  rlog group add room $(rlog id --json | jq -r .name) k51...B k51...C
  rlog append --group-name room "hello" && rlog publish
  rlog keep k51...A k51...B k51...C --from ... --listen 0.0.0.0:8080  # a keeper of all
  rlog fetch --group room --from http://keeper:8080       # merged, parents first
  rlog follow --group room --from http://keeper:8080      # and what comes later
  rlog log --group room --graph --from http://keeper:8080 # the DAG in lanes`,
		Example: `  rlog group create room
  rlog group add room k51qzi5uqu5d...
  rlog group ls --json
  rlog group rm room k51qzi5uqu5d...
  rlog group remove room`,
	}
	store := func() (remotelog.GroupStore, error) {
		dir, _, err := a.repoConfig()
		if err != nil {
			return remotelog.GroupStore{}, err
		}
		return remotelog.Groups(dir), nil
	}
	// noGroup says what to do when the group named is not in the repo.
	noGroup := func(name string, err error) error {
		if errors.Is(err, remotelog.ErrNoGroup) {
			return usageFail(err, "the repo has no group %q: 'rlog group ls' lists its groups, 'rlog group create %s' makes one", name, name)
		}
		return err
	}
	create := &cobra.Command{
		Use: "create NAME", Short: "Create an empty group", Args: cobra.ExactArgs(1),
		Example: "  rlog group create room",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := store()
			if err != nil {
				return err
			}
			if err := s.Create(args[0]); errors.Is(err, remotelog.ErrGroupExists) {
				return failf(err, "the repo has a group %q already: 'rlog group ls' lists it and its members", args[0])
			} else if err != nil {
				return err
			}
			g := remotelog.Group{Name: args[0]}
			fmt.Fprintf(a.stdout, "created group %s (MVDS group id %s)\n", args[0], hex.EncodeToString(g.ID()))
			return nil
		},
	}
	// member makes add and rm: op applied to each log named, in turn.
	member := func(use, short, example, done string, op func(remotelog.GroupStore, string, ipns.Name) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Example: example, Args: cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				s, err := store()
				if err != nil {
					return err
				}
				for _, l := range args[1:] {
					n, err := parseName(l)
					if err != nil {
						return err
					}
					if err := op(s, args[0], n); err != nil {
						return noGroup(args[0], err)
					}
					fmt.Fprintf(a.stdout, done+"\n", n, args[0])
				}
				return nil
			},
		}
	}
	add := member("add NAME LOG...", "Add members' logs to a group", "  rlog group add room k51qzi5uqu5d... k51qzi5uqu5d...", "added %s to %s", remotelog.GroupStore.AddMember)
	rm := member("rm NAME LOG...", "Take members' logs out of a group", "  rlog group rm room k51qzi5uqu5d...", "removed %s from %s", remotelog.GroupStore.RemoveMember)
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Forget a group and its cursors (the messages stay in the logs)", Args: cobra.ExactArgs(1),
		Example: "  rlog group remove room",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := store()
			if err != nil {
				return err
			}
			if err := s.Remove(args[0]); err != nil {
				return noGroup(args[0], err)
			}
			fmt.Fprintf(a.stdout, "removed group %s\n", args[0])
			return nil
		},
	}
	var asJSON bool
	ls := &cobra.Command{
		Use: "ls", Short: "List the groups, their members and heads", Args: cobra.NoArgs,
		Example: "  rlog group ls\n  rlog group ls --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := store()
			if err != nil {
				return err
			}
			gs, err := s.List()
			if err != nil {
				return err
			}
			if asJSON {
				for _, g := range gs {
					members, heads := g.Members, g.Heads
					if members == nil {
						members = []string{}
					}
					if heads == nil {
						heads = []string{}
					}
					if err := writeJSONLine(a.stdout, map[string]any{"name": g.Name, "id": hex.EncodeToString(g.ID()), "members": members, "heads": heads}); err != nil {
						return err
					}
				}
				return nil
			}
			if len(gs) == 0 {
				fmt.Fprintln(a.stderr, "no groups: create one with 'rlog group create NAME'")
			}
			for _, g := range gs {
				fmt.Fprintf(a.stdout, "%s\t%d members\t%d heads\n", g.Name, len(g.Members), len(g.Heads))
				for _, m := range g.Members {
					fmt.Fprintf(a.stdout, "  %s\n", m)
				}
			}
			return nil
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per group: name, id (hex), members, heads")
	cmd.AddCommand(create, add, rm, remove, ls)
	return cmd
}

// memberFailure says, in one line, why member i of g could not be read
// from from ("": this repo) and what follows: its messages are not merged
// past what was read, and it is read again next time. --debug gives the
// whole chain of causes.
func (a *app) memberFailure(g remotelog.Group, i int, err error, from string, again bool) string {
	member := "member " + groupAuthor(g, i)
	if a.debug {
		return fmt.Sprintf("%s: %v", member, err)
	}
	next := ""
	if again {
		next = "; read again next time"
	}
	if errors.Is(err, remotelog.ErrNoLog) || errors.Is(err, namesys.ErrNotFound) {
		if from == "" {
			return member + ": not published in this repo (keep its log here with 'rlog fetch NAME --from SOURCE --keep', or read the group with --from SOURCE)" + next
		}
		return fmt.Sprintf("%s: not published at %s (yet)%s", member, from, next)
	}
	return fmt.Sprintf("%s: %s; not merged past what was read%s", member, reason(err), next)
}

// groupAuthor is the member's name as output shows it.
func groupAuthor(g remotelog.Group, i int) string {
	if i < 0 || i >= len(g.Members) {
		return "?"
	}
	return g.Members[i]
}

// shortName abbreviates a log name for messages to people.
func shortName(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return strings.TrimSpace(s)
}

// fetchGroup is fetch --group: every member's log merged.
// groupRead is how fetch --group reads: --no-wait, --stable.
type groupRead struct{ noWait, stable, keep bool }

func (a *app) fetchGroup(cmd *cobra.Command, name string, froms []string, asJSON bool, gr groupRead, outDir string) error {
	if outDir != "" {
		return usagef("--out: a group reads small messages only; fetch a member's log alone to save large bodies")
	}
	// Several sources are one pool, as for one log: each member's log is
	// read from whichever has it.
	from := strings.Join(froms, " or ")
	return a.withSources(cmd.Context(), froms, func(repo *remotelog.Repo, src remotelog.Source) error {
		store := remotelog.Groups(repo.Dir)
		g, err := store.Get(name)
		if err != nil {
			return usageFail(err, "--group %s: the repo has no such group: create it with 'rlog group create %s' and add members", name, name)
		}
		if len(g.Members) == 0 {
			return usagef("--group %s has no members: add their logs with 'rlog group add %s k51...'", name, name)
		}
		saved, err := g.HeadIDs()
		if err != nil {
			return err
		}
		heads := remotelog.NewHeads(saved)
		out := &printer{w: a.stdout, asJSON: asJSON}
		opts := remotelog.GroupReadOptions{NoWait: gr.noWait, Stable: gr.stable}
		if gr.keep {
			opts.Keep = &remotelog.KeepTarget{Store: repo.Store(), Names: repo.Names()}
		}
		st, err := remotelog.CatchUpGroup(cmd.Context(), src, g, store, opts, func(gm remotelog.GroupMessage) error {
			author := groupAuthor(g, gm.Author)
			heads.Observe(author, gm.ID, gm.Parents)
			return out.printGroup(gm, author)
		})
		if st.Messages > 0 {
			if serr := store.Update(name, func(g *remotelog.Group) error { g.Heads = heads.Hex(); return nil }); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		if err != nil {
			return err
		}
		failed := 0
		for i, e := range st.Errors {
			if e != nil {
				failed++
				fmt.Fprintln(a.stderr, a.memberFailure(g, i, e, from, true))
			}
		}
		for i, n := range st.Waiting {
			fmt.Fprintf(a.stderr, "waiting for %s of %s: %s not read yet\n", plural(n, "message"), shortName(groupAuthor(g, i)), plural(len(st.Missing), "parent"))
		}
		if asJSON {
			var waiting uint64
			for _, n := range st.Waiting {
				waiting += uint64(n)
			}
			if err := writeJSONLine(a.stdout, map[string]any{"summary": map[string]any{"new_messages": st.Messages, "members": len(g.Members), "members_failed": failed, "waiting": waiting}}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(a.stderr, "%s from %s\n", plural(st.Messages, "new message"), plural(len(g.Members), "member"))
		}
		if failed == len(g.Members) {
			return failf(errors.Join(st.Errors...), "fetch --group %s: no member's log could be read (each member's reason is above)", name)
		}
		return nil
	})
}

// logGroup is log --group [--graph]: the group from the start, from this
// repo's backend, cursors untouched.
func (a *app) logGroup(cmd *cobra.Command, name, from string, drawGraph, asJSON bool) error {
	if drawGraph && asJSON {
		return usagef("give --graph or --json, not both")
	}
	return a.withSource(cmd.Context(), from, func(repo *remotelog.Repo, src remotelog.Source) error {
		store := remotelog.Groups(repo.Dir)
		g, err := store.Get(name)
		if err != nil {
			return usageFail(err, "--group %s: the repo has no such group ('rlog group ls')", name)
		}
		out := &printer{w: a.stdout, asJSON: asJSON}
		gr := newGraph(a.stdout, len(g.Members))
		st, err := remotelog.CatchUpGroup(cmd.Context(), src, g, store, remotelog.GroupReadOptions{FromStart: true, NoWait: true}, func(gm remotelog.GroupMessage) error {
			if drawGraph {
				return gr.draw(gm, fmt.Sprintf("%.8s %s %s", gm.ID.String(), shortName(groupAuthor(g, gm.Author)), bodyText(gm.Message.Body)))
			}
			return out.printGroup(gm, groupAuthor(g, gm.Author))
		})
		if err != nil {
			return err
		}
		failed := 0
		for i, e := range st.Errors {
			if e != nil {
				failed++
				fmt.Fprintln(a.stderr, a.memberFailure(g, i, e, from, false))
			}
		}
		if failed > 0 && failed == len(g.Members) {
			if from == "" {
				return failf(errors.Join(st.Errors...), "log --group %s: no member's log is in this repo: give --from SOURCE (where 'fetch --group' reads them), or keep them here ('rlog fetch NAME --keep', 'rlog keep')", name)
			}
			return failf(errors.Join(st.Errors...), "log --group %s: no member's log could be read (each member's reason is above)", name)
		}
		return nil
	})
}

// followGroup is follow --group: fetch --group again and again, polling.
func (a *app) followGroup(cmd *cobra.Command, name, from string, asJSON bool, minInterval, maxInterval time.Duration) error {
	dir, _, err := a.repoConfig()
	if err != nil {
		return err
	}
	store := remotelog.Groups(dir)
	g, err := store.Get(name)
	if err != nil {
		return usageFail(err, "--group %s: the repo has no such group ('rlog group ls')", name)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src, err := a.openSource(ctx, from)
	if err != nil {
		return err
	}
	defer src.Close()
	out := &printer{w: a.stdout, asJSON: asJSON}
	var outMu sync.Mutex // ephemeral messages print from their own stream
	a.followEphemeral(ctx, src, from, g, asJSON, &outMu)
	said := ""
	return remotelog.FollowGroup(ctx, src, g, store, remotelog.FollowGroupOptions{
		MinInterval: minInterval, MaxInterval: maxInterval,
		Heads: func(hs []string) {
			if err := store.Update(name, func(sg *remotelog.Group) error { sg.Heads = hs; return nil }); err != nil {
				fmt.Fprintf(a.stderr, "saving the group's heads: %v\n", err)
			}
		},
		Status: func(st remotelog.GroupStats) {
			var b strings.Builder
			for i, e := range st.Errors {
				if e != nil {
					fmt.Fprintln(&b, a.memberFailure(g, i, e, from, true))
				}
			}
			for i, n := range st.Waiting {
				fmt.Fprintf(&b, "waiting for %s of %s\n", plural(n, "message"), shortName(groupAuthor(g, i)))
			}
			if b.String() != said {
				said = b.String()
				fmt.Fprint(a.stderr, said)
			}
		},
	}, func(gm remotelog.GroupMessage) error {
		outMu.Lock()
		defer outMu.Unlock()
		return out.printGroup(gm, groupAuthor(g, gm.Author))
	})
}

// followEphemeral prints the group's ephemeral messages (typing, presence)
// that the node behind a gateway source receives or sends, as they come:
// "ephemeral<TAB>PEER<TAB>TEXT", or a JSON line with "ephemeral":true.
// They are never stored; a source that is no node's gateway has none.
func (a *app) followEphemeral(ctx context.Context, src remotelog.Source, from string, g remotelog.Group, asJSON bool, outMu *sync.Mutex) {
	es, ok := src.(interface {
		Ephemeral(context.Context, []byte) (<-chan remotelog.EphemeralEvent, error)
	})
	if !ok {
		return
	}
	ch, err := es.Ephemeral(ctx, g.ID())
	if err != nil {
		return // a gateway of no running node: messages only
	}
	fmt.Fprintf(a.stderr, "following ephemeral messages of %s at %s\n", g.Name, from)
	go func() {
		for ev := range ch {
			outMu.Lock()
			if asJSON {
				j := map[string]any{"ephemeral": true, "id": ev.ID, "group": ev.Group, "from": ev.From, "timestamp": rfc3339(time.Unix(ev.Timestamp, 0)), "body": ev.Body}
				if utf8.Valid(ev.Body) {
					j["text"] = string(ev.Body)
				}
				writeJSONLine(a.stdout, j)
			} else {
				fmt.Fprintf(a.stdout, "ephemeral\t%s\t%s\n", ev.From, bodyText(ev.Body))
			}
			outMu.Unlock()
		}
	}()
}

// nameOrGroup checks the arguments of a command reading a log NAME or, with
// --group, a group: one NAME, or none with --group.
func nameOrGroup(group *string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if *group != "" && len(args) > 0 {
			return usagef("give a log NAME or --group, not both")
		}
		if *group != "" {
			return nil
		}
		return cobra.ExactArgs(1)(cmd, args)
	}
}

// oneSource is the one --from a group's follower takes (the members' logs
// and the ephemeral messages of the node behind it), or "" (this repo) when
// none is given and none is required.
func oneSource(what string, froms []string, required bool) (string, error) {
	switch {
	case len(froms) == 0 && required:
		return "", usagef("%s: give --from SOURCE, where the members' logs are (a gateway, a repo folder, kubo:)", what)
	case len(froms) == 0:
		return "", nil
	case len(froms) == 1:
		return froms[0], nil
	}
	return "", usagef("%s reads the members' logs from one source, whose node also sends the group's ephemeral messages: give --from once ('rlog fetch --group' reads from several)", what)
}

// runFollowGroup is run --follow-group: the node follows the group kept
// in its repo, printing its messages merged; with --sync of the group's
// MVDS group, what peers send joins the stream.
func (a *app) runFollowGroup(ctx context.Context, node *remotelog.Node, nf nodeFlags, outMu *sync.Mutex, closers *[]func()) error {
	from, err := oneSource("--follow-group", nf.followFrom, true)
	if err != nil {
		return err
	}
	src, err := a.openSource(ctx, from)
	if err != nil {
		return err
	}
	*closers = append(*closers, func() { src.Close() })
	g, err := remotelog.Groups(node.Repo().Dir).Get(nf.followGrp)
	if err != nil {
		return usageFail(err, "--follow-group %s: the repo has no such group ('rlog group ls')", nf.followGrp)
	}
	out := &printer{w: a.stdout, asJSON: nf.followJSON}
	_, _, err = node.SubscribeGroup(ctx, nf.followGrp, src, remotelog.FollowGroupOptions{MinInterval: nf.minIntv, MaxInterval: nf.maxIntv},
		func(gm remotelog.GroupMessage) error {
			outMu.Lock()
			defer outMu.Unlock()
			return out.printGroup(gm, groupAuthor(g, gm.Author))
		})
	return err
}
