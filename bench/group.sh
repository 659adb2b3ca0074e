#!/bin/sh
# group.sh: a group conversation caught up from the CLI (docs/PERFORMANCE.md,
# issue 12): M members (default 50) each write N messages (default 1,000) of
# about 100 B in group "room", each after reading the previous member's log
# (its first message names that one's last); a keeper repo holds every log
# and 'rlog serve' serves it; a reader that never read the group runs
# 'rlog fetch --group room --from GATEWAY --json'. Prints the reader's wall
# time, CPU and peak RSS (/usr/bin/time -f %M), and the messages it printed.
#
#   go build -o bin/rlog ./cmd/rlog
#   sh bench/group.sh [M [N]]
#
# RLOG (default bin/rlog) is the binary measured; WORK (default a temporary
# directory, removed after) holds the repos; with WORK set and its keeper
# there, the members are not written again. RUNS (default 2) readers run.
set -eu
M=${1:-50}
N=${2:-1000}
RUNS=${RUNS:-2}
RLOG=${RLOG:-bin/rlog}
RLOG=$(cd "$(dirname "$RLOG")" && pwd)/$(basename "$RLOG")
[ -x "$RLOG" ] || { echo "group.sh: $RLOG is not an executable rlog (go build -o bin/rlog ./cmd/rlog)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "group.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
KEEP=${WORK:+1}
WORK=${WORK:-$(mktemp -d)}
SERVE=
cleanup() {
	[ -z "$SERVE" ] || kill "$SERVE" 2>/dev/null || true
	[ -n "$KEEP" ] || rm -rf "$WORK"
}
trap cleanup EXIT
K=$WORK/keeper
if [ ! -f "$WORK/names.txt" ]; then
	"$RLOG" init --repo "$K" >/dev/null 2>&1
	prev=
	i=1
	while [ "$i" -le "$M" ]; do
		W=$WORK/m$i
		n=$("$RLOG" init --repo "$W" 2>/dev/null)
		"$RLOG" group create room --repo "$W" >/dev/null
		if [ -n "$prev" ]; then
			"$RLOG" group add room "$prev" --repo "$W" >/dev/null
			"$RLOG" fetch --group room --from "$K" --repo "$W" >/dev/null 2>&1
		fi
		seq 1 "$N" | awk -v m="$i" '{printf "member %03d message %05d: the quick brown fox jumps over the lazy dog %08d\n", m, $1, $1}' |
			"$RLOG" append --group-name room --repo "$W" >/dev/null
		"$RLOG" publish --repo "$W" >/dev/null
		"$RLOG" fetch "$n" --from "$W" --keep --repo "$K" >/dev/null 2>&1
		echo "$n" >>"$WORK/names.txt.part"
		prev=$n
		i=$((i + 1))
	done
	mv "$WORK/names.txt.part" "$WORK/names.txt"
fi
"$RLOG" serve --repo "$K" --listen 127.0.0.1:0 >"$WORK/serve.log" 2>&1 &
SERVE=$!
i=0
until grep -q 'http://' "$WORK/serve.log"; do
	i=$((i + 1))
	[ "$i" -lt 300 ] || { echo "group.sh: rlog serve did not start: $(cat "$WORK/serve.log")" >&2; exit 1; }
	sleep 0.1
done
GW=$(sed -n 's/.* at \(http:[^ ]*\).*/\1/p' "$WORK/serve.log" | head -n 1)
echo "| run | members × messages | wall s | CPU s (user+sys) | peak RSS KiB | printed | load |"
echo "|---|---|---|---|---|---|---|"
r=1
while [ "$r" -le "$RUNS" ]; do
	R=$WORK/reader$r
	rm -rf "$R"
	"$RLOG" init --repo "$R" >/dev/null 2>&1
	"$RLOG" group create room --repo "$R" >/dev/null
	# shellcheck disable=SC2046
	"$RLOG" group add room $(cat "$WORK/names.txt") --repo "$R" >/dev/null
	/usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$RLOG" fetch --group room --from "$GW" --repo "$R" --json >"$WORK/out.json" 2>"$WORK/err"
	read -r wall user sys rss <"$WORK/time"
	printed=$(grep -c '"seq"' "$WORK/out.json" || true)
	load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
	echo "| $r | $M × $N | $wall | $user+$sys | $rss | $printed | $load |"
	r=$((r + 1))
done
