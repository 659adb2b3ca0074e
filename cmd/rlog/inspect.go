package main

import (
	"encoding/hex"
	"fmt"
	"github.com/ipfs/go-cid"

	"github.com/fxamacker/cbor/v2"
	"github.com/spf13/cobra"

	"rlog/mvds"
	"rlog/pager"
)

type pageJSON struct {
	V       uint64      `json:"v"`
	P       uint64      `json:"p"`
	S       uint64      `json:"s"`
	Head    bool        `json:"head"`
	Entries []entryJSON `json:"e"`
	Links   [][2]any    `json:"l,omitempty"`
	Tail    [][2]any    `json:"t,omitempty"`
	Window  [][2]any    `json:"w,omitempty"`
	Index   [][3]any    `json:"x,omitempty"`
	Addrs   []string    `json:"a,omitempty"`
	Node    string      `json:"n,omitempty"`
	Bytes   int         `json:"bytes"`
}

// windowJSON is a window node (format v3) as inspect prints it.
type windowJSON struct {
	V      uint64   `json:"v"`
	Kind   string   `json:"kind"` // "window"
	P      uint64   `json:"p"`
	Window [][2]any `json:"w"`
	Index  [][3]any `json:"x"`
	Bytes  int      `json:"bytes"`
}

// indexJSON is an index node (format v2) as inspect prints it.
type indexJSON struct {
	V     uint64   `json:"v"`
	Kind  string   `json:"kind"` // "index"
	F     uint64   `json:"f"`
	Links [][2]any `json:"l"`
	Bytes int      `json:"bytes"`
}

type entryJSON struct {
	Seq     uint64 `json:"seq"`
	ID      string `json:"i"`
	Inline  []byte `json:"c,omitempty"`
	Ref     string `json:"r,omitempty"`
	Text    string `json:"text,omitempty"`
	IDValid *bool  `json:"id_matches_payload,omitempty"`
}

func (a *app) inspectCmd() *cobra.Command {
	var from string
	var diag bool
	cmd := &cobra.Command{
		Use:   "inspect CID",
		Short: "Print a page as JSON",
		Long: `Fetch a block of a log (a page, an index node or a window node), check its hash,
decode and validate it, and print it as JSON whose keys are the format's own
(docs/FORMAT.md). Formats v1, v2 and v3 are read. To find a log's head page: 'rlog
resolve NAME'; the CIDs inspect prints lead to the other blocks.

What it prints, by kind of block:
  page          v (format version), p (page number), s (first sequence number) and
                entries e: id, payload inline (base64) or the CID of a pointer to it,
                sequence number, and for an inline payload whether the id matches (a
                v2 page has no id for an inline payload: inspect prints its hash)
  v1 page       also its skip links l
  v2 head       also its window w, index links x and tail pieces t
  v3 head       also its tail pieces t and window node n
  index node    its first page f and page links l
  window node   the head's page p, its window w and index links x (v3)

--diag prints the block in CBOR diagnostic notation instead of JSON.`,
		Example: `  rlog inspect bafyrei...
  rlog inspect bafyrei... --from http://127.0.0.1:8080 --diag
  rlog inspect $(rlog resolve k51qzi5uqu5d... --json | jq -r .head)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, err := cid.Decode(args[0]); err == nil && (c.Prefix().Codec == cid.Raw || c.Prefix().Codec == cid.DagProtobuf) {
				return usagef("%s is not a page (pages are dag-cbor): it is part of a message's payload file; 'rlog block get %s' prints the block, 'rlog fetch NAME --out DIR' saves message bodies", args[0], args[0])
			}
			b, err := a.getBlock(cmd.Context(), from, args[0])
			if err != nil {
				return err
			}
			pg, err := pager.Decode(b)
			ix, ierr := pager.DecodeIndex(b)
			wn, werr := pager.DecodeWindowNode(b)
			if err != nil && ierr != nil && werr != nil {
				return err
			}
			if diag {
				dm, err := cbor.DiagOptions{ByteStringEncoding: cbor.ByteStringBase16Encoding}.DiagMode()
				if err != nil {
					return err
				}
				d, err := dm.Diagnose(b)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(a.stdout, d)
				return err
			}
			if wn != nil {
				return writeJSON(a.stdout, windowJSON{V: pager.V3, Kind: "window", P: wn.Number, Window: nonNil(links(wn.Window)), Index: indexLinks(wn.Index), Bytes: len(b)})
			}
			if pg == nil {
				return writeJSON(a.stdout, indexJSON{V: pager.Version, Kind: "index", F: ix.First, Links: links(ix.Pages), Bytes: len(b)})
			}
			out := pageJSON{V: pg.V(), P: pg.Number, S: pg.Start, Head: pg.Head, Addrs: pg.Addrs, Bytes: len(b), Links: links(pg.Links)}
			if pg.V() == pager.V1 && out.Links == nil {
				out.Links = [][2]any{}
			}
			if pg.Head {
				out.Window = links(pg.Window)
				out.Tail = links(pg.Tail)
			}
			out.Index = indexLinks(pg.Index)
			if pg.Node.Defined() {
				out.Node = pg.Node.String()
			}
			for i, e := range pg.Entries {
				ej := entryJSON{Seq: pg.Start + uint64(i), ID: hex.EncodeToString(e.ID[:])}
				if e.Inline() {
					ej.Inline = e.Payload
					m, _, err := mvds.UnmarshalMessage(e.Payload)
					ok := err == nil && (pg.V() != pager.V1 || m.ID() == e.ID)
					if err == nil && pg.V() != pager.V1 {
						id := m.ID()
						ej.ID = hex.EncodeToString(id[:])
					}
					ej.IDValid = &ok
					if ok {
						ej.Text = string(m.Body)
					}
				} else {
					ej.Ref = e.Ref.String()
				}
				out.Entries = append(out.Entries, ej)
			}
			return writeJSON(a.stdout, out)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", fromHelp)
	cmd.Flags().BoolVar(&diag, "diag", false, "print the block in CBOR diagnostic notation instead")
	a.apiFlagOn(cmd)
	return cmd
}

func links(ls []pager.Link) [][2]any {
	var out [][2]any
	for _, l := range ls {
		out = append(out, [2]any{l.Cid.String(), l.Start})
	}
	return out
}

func indexLinks(xs []pager.IndexLink) [][3]any {
	var out [][3]any
	for _, x := range xs {
		out = append(out, [3]any{x.Cid.String(), x.Page, x.Start})
	}
	return out
}

func nonNil(ls [][2]any) [][2]any {
	if ls == nil {
		return [][2]any{}
	}
	return ls
}
