#!/usr/bin/env bash
# Copies the browser packages the web UI uses from npm into static/vendor/,
# where go:embed bundles them into the consumer binary: the UI never loads
# anything from a CDN. Run it after changing package.json (then
# `npm install --package-lock-only --ignore-scripts` to pin the lock file)
# and commit static/vendor/ with the regenerated SHA256SUMS, which
# TestVendoredFiles checks so a hand-edited vendored file is caught.
#
# npm ci installs exactly package-lock.json, in a temporary directory,
# without running any package's install scripts.
#
# VENDOR_OUT writes the files to another directory instead, so CI can
# compare them with the committed ones without touching the tree.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${VENDOR_OUT:-$here/static/vendor}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

log() { echo "vendor.sh: $*" >&2; }

command -v npm >/dev/null || {
	log "npm is not on PATH"
	exit 1
}

cp "$here/package.json" "$here/package-lock.json" "$tmp/"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)

rm -rf "${out:?}"/*
mkdir -p "$out/uplot"

# uPlot: the ES module build and its stylesheet.
pkg="$tmp/node_modules/uplot"
cp "$pkg/dist/uPlot.esm.js" "$out/uplot/uPlot.esm.js"
cp "$pkg/dist/uPlot.min.css" "$out/uplot/uPlot.min.css"
cp "$pkg/LICENSE" "$out/uplot/LICENSE"
node -p "require('$pkg/package.json').version" >"$out/uplot/VERSION"

# The checksums TestVendoredFiles compares the embedded files with.
(cd "$out" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
log "vendored into $out:"
sed 's/^/  /' "$out/SHA256SUMS" >&2
