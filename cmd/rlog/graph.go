package main

import (
	"fmt"
	"io"
	"strings"

	"rlog/mvds"
	"rlog/remotelog"
)

// graph draws a group's merged messages in the terminal, one lane per
// member, oldest first, as 'git log --graph' does newest first: a '*' in
// its author's lane, and above it a line joining the lanes of the parents
// it names in other members' logs ('+' at a parent's lane, '.' at its
// own). It is pure: the caller feeds it the merge's output in order.
type graph struct {
	w      io.Writer
	lanes  int
	lane   map[mvds.MessageID]int // the author of each message drawn
	active []bool                 // lanes that have drawn a message
}

func newGraph(w io.Writer, lanes int) *graph {
	return &graph{w: w, lanes: lanes, lane: map[mvds.MessageID]int{}, active: make([]bool, lanes)}
}

func (g *graph) draw(gm remotelog.GroupMessage, text string) error {
	from := map[int]bool{}
	lo, hi := gm.Author, gm.Author
	for _, p := range gm.Parents {
		if l, ok := g.lane[p]; ok && l != gm.Author {
			from[l] = true
			lo, hi = min(lo, l), max(hi, l)
		}
	}
	if len(from) > 0 {
		var b strings.Builder
		for j := 0; j < g.lanes; j++ {
			switch {
			case j == gm.Author:
				b.WriteString(".")
			case from[j]:
				b.WriteString("+")
			case g.active[j] && (j < lo || j > hi):
				b.WriteString("|")
			case j > lo && j < hi:
				b.WriteString("-")
			default:
				b.WriteString(" ")
			}
			if j >= lo && j < hi {
				b.WriteString("-")
			} else {
				b.WriteString(" ")
			}
		}
		if _, err := fmt.Fprintln(g.w, strings.TrimRight(b.String(), " ")); err != nil {
			return err
		}
	}
	g.active[gm.Author] = true
	g.lane[gm.ID] = gm.Author
	var b strings.Builder
	for j := 0; j < g.lanes; j++ {
		switch {
		case j == gm.Author:
			b.WriteString("* ")
		case g.active[j]:
			b.WriteString("| ")
		default:
			b.WriteString("  ")
		}
	}
	_, err := fmt.Fprintf(g.w, "%s %s\n", b.String(), text)
	return err
}
