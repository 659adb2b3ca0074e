# Helper to build the MinIO server the S3 tests run (internal/miniotest
# starts throwaway servers on 127.0.0.1 from it). Source it, then:
# minio_build. The binary is cached in bin/minio, never committed.

MINIO_BIN=${MINIO_BIN:-$PWD/bin/minio}
# MinIO publishes no module versions; this is the pseudo-version of its
# last release commit the module proxy serves.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

minio_build() {
	# go install of path@version builds in its own module, apart from
	# rlog's go.mod (MinIO is a server the tests talk to, not a dependency).
	local gobin
	gobin=$(mktemp -d)
	GOFLAGS=-mod=mod GOBIN=$gobin go install "github.com/minio/minio@$MINIO_VERSION" &&
		mkdir -p "$(dirname "$MINIO_BIN")" && mv "$gobin/minio" "$MINIO_BIN"
	local rc=$?
	rm -rf "$gobin"
	return $rc
}

# Run as a script: build it.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cd "$(dirname "$0")/.."
	MINIO_BIN=$PWD/bin/minio
	minio_build
	"$MINIO_BIN" --version
fi
