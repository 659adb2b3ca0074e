# Helpers to run throwaway Kubo daemons on 127.0.0.1 for the Kubo tests.
# Source it, then: kubo_build; kubo_start NAME [--offline]; kubo_stop_all.
# kubo_start prints the node's API multiaddr, gateway URL and swarm address
# as NAME_API, NAME_GW and NAME_SWARM variables into $KUBO_ENV.

KUBO_ROOT=${KUBO_ROOT:-$(mktemp -d)}
KUBO_ENV=${KUBO_ENV:-$KUBO_ROOT/env}
IPFS_BIN=${IPFS_BIN:-$PWD/bin/ipfs}
KUBO_PIDS=()

kubo_build() {
	# The daemon at the Kubo version go.mod records as a tool; never committed.
	go build -o "$IPFS_BIN" github.com/ipfs/kubo/cmd/ipfs
}

free_port() {
	if command -v python3 >/dev/null; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
		return
	fi
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
	done
}

kubo_start() {
	local name=$1 mode=${2:-}
	local dir=$KUBO_ROOT/$name
	local api gw swarm
	api=$(free_port); gw=$(free_port); swarm=$(free_port)
	export IPFS_PATH=$dir
	"$IPFS_BIN" init --profile test >/dev/null
	"$IPFS_BIN" config Addresses.API "/ip4/127.0.0.1/tcp/$api"
	"$IPFS_BIN" config Addresses.Gateway "/ip4/127.0.0.1/tcp/$gw"
	"$IPFS_BIN" config --json Addresses.Swarm "[\"/ip4/127.0.0.1/tcp/$swarm\"]"
	IPFS_TELEMETRY=off "$IPFS_BIN" daemon $mode >"$dir.log" 2>&1 &
	KUBO_PIDS+=($!)
	for _ in $(seq 150); do
		if "$IPFS_BIN" --api "/ip4/127.0.0.1/tcp/$api" id >/dev/null 2>&1; then
			local id
			id=$("$IPFS_BIN" --api "/ip4/127.0.0.1/tcp/$api" id -f '<id>')
			{
				echo "${name}_API=/ip4/127.0.0.1/tcp/$api"
				echo "${name}_GW=http://127.0.0.1:$gw"
				echo "${name}_SWARM=/ip4/127.0.0.1/tcp/$swarm/p2p/$id"
				echo "${name}_PATH=$dir"
			} >>"$KUBO_ENV"
			unset IPFS_PATH
			return 0
		fi
		sleep 0.2
	done
	echo "kubo $name did not start:" >&2
	cat "$dir.log" >&2
	unset IPFS_PATH
	return 1
}

kubo_stop_all() {
	for pid in "${KUBO_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${KUBO_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	KUBO_PIDS=()
}
