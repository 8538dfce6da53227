#!/usr/bin/env bash
# Runs the whole pipeline on one machine on embedded defaults: the
# in-process Kafka broker, the chDB audit store, the reference token API,
# the detector, the consumer and the analyst API. Installs libchdb and the
# address databases (install-geoip.sh) first when they are missing.
# Arguments go to `go run ./deployments/local`, e.g.
#
#   bash deployments/local/run.sh --simulate 60s
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"
CHDB_LIB_PATH="$(bash deployments/local/install-libchdb.sh)"
export CHDB_LIB_PATH
REVOKED_GEOIP_DIR="$(bash deployments/local/install-geoip.sh)"
export REVOKED_GEOIP_DIR
exec go run ./deployments/local "$@"
