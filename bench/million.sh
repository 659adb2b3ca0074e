#!/bin/sh
# million.sh: a million messages on a phone, as a user runs them from the CLI
# (docs/PERFORMANCE.md, "A million messages"). For each step: wall time, the
# process's peak RSS (/usr/bin/time -f %M) and, after publish, the repo's size
# on disk against the bodies appended; then serve during a full catch-up
# from its gateway and a keeper holding the whole log, and the keeper's
# repo against the bodies.
#
#   go build -o bin/rlog ./cmd/rlog
#   sh bench/million.sh [N [BODY_BYTES]]        # default 1000000 256
#
# RLOG (default bin/rlog) is the binary measured; WORK (default a temporary
# directory, removed after) holds the repos; BODIES=random appends
# incompressible lines instead of a number and padding. Prints a Markdown
# table.
set -eu
N=${1:-1000000}
B=${2:-256}
RLOG=${RLOG:-bin/rlog}
RLOG=$(cd "$(dirname "$RLOG")" && pwd)/$(basename "$RLOG")
[ -x "$RLOG" ] || { echo "million.sh: $RLOG is not an executable rlog (go build -o bin/rlog ./cmd/rlog)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "million.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
KEEP=${WORK:+1}
WORK=${WORK:-$(mktemp -d)}
[ -n "$KEEP" ] || trap 'rm -rf "$WORK"' EXIT
W=$WORK/w
R=$WORK/r

# lines N B: N distinct lines of B bytes each (B-1 characters and a newline):
# a number and padding, or with BODIES=random, base64 of random bytes (which
# no store compresses: the worst case for disk).
lines() {
	if [ "${BODIES:-text}" = random ]; then
		head -c $(( ($1 + 1) * ($2 - 1) )) /dev/urandom | base64 -w $(($2 - 1)) | head -n "$1"
		return
	fi
	awk -v n="$1" -v b="$2" 'BEGIN {
		pad = sprintf("%*s", b, ""); gsub(/ /, "x", pad)
		for (i = 1; i <= n; i++) { s = sprintf("%d ", i); print s substr(pad, 1, b - 1 - length(s)) }
	}'
}

# run NAME CMD...: runs CMD, records wall seconds and peak RSS (MiB).
run() {
	name=$1; shift
	/usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || {
		echo "million.sh: $name failed:" >&2; tail -5 "$WORK/err" >&2; exit 1; }
	read -r secs kb <"$WORK/time"
	printf '| %s | %s s | %d MiB |\n' "$name" "$secs" $((kb / 1024))
}

du_mb() { du -sk "$1" | awk '{printf "%.1f", $1 / 1024}'; }

bodies=$((N * (B - 1)))
echo "rlog: $N messages of $((B - 1))-byte ${BODIES:-text} bodies (+ newline), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| step | time | peak RSS |"
echo "|---|---|---|"
"$RLOG" init --repo "$W" >/dev/null 2>&1
lines "$N" "$B" >"$WORK/lines"
run "append $N lines from a pipe" sh -c "cat '$WORK/lines' | '$RLOG' append --repo '$W' >/dev/null"
rm -f "$WORK/lines"
run "publish" "$RLOG" publish --repo "$W"
NAME=$("$RLOG" id --repo "$W" --json | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p')
run "log (all)" sh -c "'$RLOG' log --repo '$W' >/dev/null"
run "backup" "$RLOG" backup --repo "$W" "$NAME" -o "$WORK/log.car"
run "check FILE.car" "$RLOG" check --repo "$W" "$WORK/log.car"
"$RLOG" init --repo "$R" >/dev/null 2>&1
run "restore FILE.car" "$RLOG" restore --repo "$R" "$WORK/log.car"
rm -rf "$R"
"$RLOG" init --repo "$R" >/dev/null 2>&1
run "fetch --from DIR (all)" sh -c "'$RLOG' fetch --repo '$R' '$NAME' --from '$W' >/dev/null"

# serve during a full catch-up over HTTP, and a keeper holding the whole log:
# each a long-running process, measured from its start until it is stopped
# once the reader or the keeper has all of it.
bg_start() { # bg_start NAME CMD...: runs CMD under time in the background
	bgname=$1; shift
	: >"$WORK/out.$bgname" # there before bg_wait reads it
	/usr/bin/time -f '%e %M' -o "$WORK/time.$bgname" "$@" >"$WORK/out.$bgname" 2>&1 &
	eval "pid_$bgname=$!"
}
bg_wait() { # bg_wait NAME REGEXP: waits (at most 10 minutes) for a line of its output
	i=0
	eval "bgpid=\$pid_$1"
	until grep -q "$2" "$WORK/out.$1"; do
		i=$((i + 1))
		[ $i -lt 6000 ] && kill -0 "$bgpid" 2>/dev/null || { echo "million.sh: $1 did not print '$2':" >&2; tail -5 "$WORK/out.$1" >&2; exit 1; }
		sleep 0.1
	done
}
bg_stop() { # bg_stop NAME TEXT: interrupts it and reports its peak RSS
	eval "bgpid=\$pid_$1"
	pkill -INT -P "$bgpid"
	wait "$bgpid" || true
	read -r secs kb <"$WORK/time.$1"
	printf '| %s | %s s | %d MiB |\n' "$2" "$secs" $((kb / 1024))
}
bg_start serve "$RLOG" serve --repo "$W" --listen 127.0.0.1:0
bg_wait serve 'http://127'
URL=$(sed -n 's/.* at \(http:[^ ]*\).*/\1/p' "$WORK/out.serve" | head -1)
rm -rf "$R"
"$RLOG" init --repo "$R" >/dev/null 2>&1
run "fetch --from a gateway (all)" sh -c "'$RLOG' fetch --repo '$R' '$NAME' --from '$URL' >/dev/null"
K=$WORK/k
"$RLOG" init --repo "$K" >/dev/null 2>&1
bg_start keep "$RLOG" keep --repo "$K" "$NAME" --from "$URL"
bg_wait keep "^kept $NAME"
bg_stop keep "keep from the gateway (all), until stopped"
bg_stop serve "serve, during both catch-ups, until stopped"
echo
total=$(du_mb "$W")
echo "| writer's repo after publish | MB | x bodies |"
echo "|---|---|---|"
for d in "$W"/*; do
	[ -d "$d" ] || continue
	printf '| %s/ | %s | |\n' "$(basename "$d")" "$(du_mb "$d")"
done
printf '| total | %s | %s |\n' "$total" "$(awk -v t="$total" -v b="$bodies" 'BEGIN {printf "%.2f", t * 1048576 / b}')"
printf '| reader repo after fetch (fetch keeps no blocks) | %s | %s |\n' "$(du_mb "$R")" "$(awk -v t="$(du_mb "$R")" -v b="$bodies" 'BEGIN {printf "%.2f", t * 1048576 / b}')"
printf '| keeper repo after keep | %s | %s |\n' "$(du_mb "$K")" "$(awk -v t="$(du_mb "$K")" -v b="$bodies" 'BEGIN {printf "%.2f", t * 1048576 / b}')"
printf '| backup CAR | %s | |\n' "$(du_mb "$WORK/log.car")"
