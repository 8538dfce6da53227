#!/usr/bin/env bash
# Checks the deployment files (deployments/): the alert rules with
# promtool (syntax, and the unit tests of deployments/monitoring/
# alerts_test.yaml), then the Go tests of deployments/check, a module of
# its own: the compose file loaded with compose-go and checked against
# the commands, the Helm chart rendered with helm.sh/helm/v3 for each CI
# values file, the dashboards' and rules' queries parsed with
# Prometheus's parser and checked against the metrics the components
# register, and the compose file's services run as processes with its
# configuration, one event followed to its audit row (that test needs
# REVOKED_TEST_CLICKHOUSE_DSN and REVOKED_TEST_CLICKHOUSE_READ_DSN, which
# .ci/test.sh exports from .ci/clickhouse.sh before calling this script).
#
# promtool comes from Debian's prometheus package, unpacked once into
# ${XDG_CACHE_HOME:-$HOME/.cache}/revoked/promtool-VERSION (the package's
# service is neither installed nor started); REVOKED_PROMTOOL names
# another promtool.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"

log() { echo "deploy.sh: $*" >&2; }

promtool="${REVOKED_PROMTOOL:-}"
if [[ -z "$promtool" ]]; then
	cache="${XDG_CACHE_HOME:-$HOME/.cache}/revoked"
	promtool="$(ls -d "$cache"/promtool-*/promtool 2>/dev/null | tail -n 1 || true)"
fi
if [[ -z "$promtool" || ! -x "$promtool" ]]; then
	log "unpacking promtool from Debian's prometheus package"
	sudo=""
	if [[ "$(id -u)" != 0 ]]; then
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >&2
	work="$(mktemp -d)"
	(cd "$work" && apt-get download prometheus >&2)
	deb="$(ls "$work"/prometheus_*.deb)"
	version="$(dpkg-deb -f "$deb" Version)"
	dpkg-deb -x "$deb" "$work/root"
	mkdir -p "$cache/promtool-$version"
	cp "$work/root/usr/bin/promtool" "$cache/promtool-$version/promtool"
	rm -rf "$work"
	promtool="$cache/promtool-$version/promtool"
fi
log "$("$promtool" --version 2>&1 | head -n 1)"

log "promtool check rules deployments/monitoring/alerts.yaml"
"$promtool" check rules deployments/monitoring/alerts.yaml
log "promtool test rules deployments/monitoring/alerts_test.yaml"
"$promtool" test rules deployments/monitoring/alerts_test.yaml

cd deployments/check
log "go vet (deployments/check)"
go vet ./...
log "go test -count=1 -v (deployments/check)"
# The verbose run shows the rendered object counts per CI values file and
# what the stack test saw (and, when a test fails, the processes' logs).
go test -count=1 -timeout 15m -v ./... 2>&1 | grep -v -E '^=== RUN|found symbolic link in path'
