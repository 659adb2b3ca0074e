package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"rlog/pager"
	"rlog/remotelog"
)

func (a *app) initCmd() *cobra.Command {
	var preset string
	var pageEntries, pageBytes, inline, headInline, window, format int
	var lifetime, ttl time.Duration
	var addrs []string
	var kubo, private bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repo with a new key and print the log's name",
		Long: `Create a repo with a new Ed25519 key (file mode 0600) and print the name of its
log, the IPNS name readers use. Refuses to touch an existing repo.

Pagination presets:
  paged   (default) small messages inline in pages of up to 256 entries / 256 KiB,
          payloads over 4 KiB by pointer; the head lists the 64 newest pages
  full    everything inline in 1 MiB pages: backups on durable storage
  linked  one entry per page, every payload a pointer: the spec's linked list
The other flags override single values of the preset.

With --kubo the repo publishes to a Kubo daemon instead of its embedded store, and
fetch reads through it: the daemon at --api, else the one whose api file is in
$IPFS_PATH (default ~/.ipfs), found each time. The key stays in this repo: rlog signs
records itself and hands Kubo only signed records.

With --private every message body is sealed (XChaCha20-Poly1305) under a read key kept
in the repo: stores, gateways, keepers and relays carry and verify the log but read no
body. 'rlog share' prints the link a reader needs, 'rlog rekey' changes the key for
what comes next (docs/FORMAT.md says what is and is not hidden).`,
		Example: `  rlog init                      # ~/.rlog, or $RLOG_PATH
  rlog init --repo ~/reader      # a second repo, e.g. to read others' logs
  rlog init --preset full        # big pages, everything inline
  rlog init --private            # bodies sealed; 'rlog share' gives readers the key
  rlog init --kubo --api /ip4/127.0.0.1/tcp/5001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.repoDir()
			if err != nil {
				return err
			}
			cfg, err := remotelog.DefaultConfig(preset)
			if err != nil {
				return usageFail(err, "--preset %q: want one of %s", preset, strings.Join(pager.PresetNames(), ", "))
			}
			f := cmd.Flags()
			for _, o := range []struct {
				name string
				dst  *int
				val  int
			}{{"page-entries", &cfg.Policy.PageEntries, pageEntries}, {"page-bytes", &cfg.Policy.PageBytes, pageBytes},
				{"inline-limit", &cfg.Policy.InlineLimit, inline}, {"head-inline-limit", &cfg.Policy.HeadInlineLimit, headInline},
				{"window", &cfg.Policy.Window, window}} {
				if f.Changed(o.name) {
					*o.dst = o.val
				}
			}
			if f.Changed("format") {
				if format != pager.V1 && format != pager.Version && format != pager.V3 {
					return usagef("--format %d: want %d, %d or %d", format, pager.V1, pager.Version, pager.V3)
				}
				cfg.Policy.Format = uint64(format)
			}
			if f.Changed("inline-limit") && !f.Changed("head-inline-limit") {
				cfg.Policy.HeadInlineLimit = max(cfg.Policy.HeadInlineLimit, cfg.Policy.InlineLimit)
			}
			if err := cfg.Policy.Validate(); err != nil {
				return usageError{err}
			}
			cfg.Lifetime, cfg.TTL, cfg.Addrs = remotelog.Duration(lifetime), remotelog.Duration(ttl), addrs
			if kubo {
				cfg.Backend, cfg.KuboAPI = "kubo", a.apiFlag
			}
			if name, err := remotelog.ReadName(dir); err == nil {
				return failf(nil, "init: a repo already exists in %s (its log: %s); give --repo DIR for another", dir, name)
			}
			name, err := remotelog.Init(dir, cfg)
			if err != nil {
				return err
			}
			if private {
				if err := initPrivate(dir, name); err != nil {
					return err
				}
				fmt.Fprintln(a.stderr, "private: message bodies are sealed under a read key kept in the repo (keys/, mode 0600); 'rlog share' prints the link readers need")
			}
			fmt.Fprintf(a.stderr, "created repo %s\n%s\n", dir, presetLine(preset, cfg.Policy, f.Changed))
			fmt.Fprintln(a.stdout, name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", pager.DefaultPreset, "pagination preset: full, paged or linked")
	f.IntVar(&pageEntries, "page-entries", 0, "most entries per page (1..4096)")
	f.IntVar(&pageBytes, "page-bytes", 0, "most bytes per sealed page (4096..1048576)")
	f.IntVar(&inline, "inline-limit", 0, "largest payload inline in a sealed page (-1: none)")
	f.IntVar(&headInline, "head-inline-limit", 0, "largest payload inline in the head page")
	f.IntVar(&window, "window", 0, "newest sealed pages listed in the head page")
	f.IntVar(&format, "format", pager.V3, "format written: 3; 2 for readers that read v1 and v2 only; 1 for readers that only read v1 (docs/FORMAT.md)")
	f.DurationVar(&lifetime, "lifetime", remotelog.DefaultLifetime, "how long a published record stays valid")
	f.DurationVar(&ttl, "ttl", remotelog.DefaultTTL, "how long readers may cache a record")
	f.BoolVar(&kubo, "kubo", false, "publish to a Kubo daemon: the one at --api, else the one running from $IPFS_PATH (default ~/.ipfs)")
	f.BoolVar(&private, "private", false, "seal every message body under a read key: storage and relays see ciphertext, readers need 'rlog share'")
	f.StringSliceVar(&addrs, "addr", nil, "multiaddr where the log's blocks can be reached, written in the head page (repeatable)")
	a.apiFlagOn(cmd)
	return cmd
}

// presetLine says in one line how the new log is cut into pages.
func presetLine(preset string, p pager.Policy, changed func(string) bool) string {
	how := fmt.Sprintf("up to %s a page, payloads over %d bytes stored by pointer", plural(p.PageEntries, "message"), p.InlineLimit)
	if p.InlineLimit < 0 {
		how = fmt.Sprintf("up to %s a page, every payload stored by pointer", plural(p.PageEntries, "message"))
	} else if p.InlineLimit >= p.PageBytes {
		how = fmt.Sprintf("up to %s a page, every payload inline", plural(p.PageEntries, "message"))
	}
	for _, f := range []string{"page-entries", "page-bytes", "inline-limit", "head-inline-limit", "window"} {
		if changed(f) {
			preset += " with your changes"
			break
		}
	}
	return fmt.Sprintf("pagination: preset %s (%s; 'rlog init --help' lists the presets)", preset, how)
}
