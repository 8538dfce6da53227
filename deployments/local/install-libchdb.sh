#!/usr/bin/env bash
# Installs libchdb.so, the ClickHouse engine that the embedded audit store
# (consumer/audit/chdbstore) loads at run time, and prints its path.
#
# Idempotent: when $CHDB_LIB_PATH already names a file, nothing is done.
# The library comes from the npm package @chdb/lib-linux-x64-gnu (about
# 180 MB packed, 566 MB unpacked), fetched with `npm pack` so the ordinary
# npm client, its registry settings and its cache are used.
#
# Environment:
#   CHDB_LIB_PATH            where the library goes
#                            (default ${XDG_CACHE_HOME:-$HOME/.cache}/revoked/libchdb.so)
#   REVOKED_LIBCHDB_VERSION  package version (default 26.7.3-stable.1)
#   REVOKED_LIBCHDB_TARBALL  an already downloaded .tgz of that package to
#                            unpack instead of fetching one (offline installs)
#
# Usage: eval "export CHDB_LIB_PATH=$(deployments/local/install-libchdb.sh)"
set -euo pipefail

version="${REVOKED_LIBCHDB_VERSION:-26.7.3-stable.1}"
target="${CHDB_LIB_PATH:-${XDG_CACHE_HOME:-$HOME/.cache}/revoked/libchdb.so}"

if [[ -s "$target" ]]; then
	printf '%s\n' "$target"
	exit 0
fi

case "$(uname -s)-$(uname -m)" in
Linux-x86_64) pkg="@chdb/lib-linux-x64-gnu" ;;
*)
	echo "install-libchdb: no prebuilt libchdb package for $(uname -s)-$(uname -m)" >&2
	exit 1
	;;
esac

mkdir -p "$(dirname "$target")"
work="$(mktemp -d "$(dirname "$target")/.libchdb.XXXXXX")"
trap 'rm -rf "$work"' EXIT

tarball="${REVOKED_LIBCHDB_TARBALL:-}"
if [[ -z "$tarball" ]]; then
	if ! command -v npm >/dev/null 2>&1; then
		echo "install-libchdb: npm is needed to fetch $pkg@$version" >&2
		exit 1
	fi
	echo "install-libchdb: fetching $pkg@$version with npm pack" >&2
	# stdout is the tarball's name; npm's complaints stay on stderr.
	name="$(cd "$work" && npm pack --silent "$pkg@$version" | tail -n 1)"
	tarball="$work/$name"
	if [[ -z "$name" || ! -s "$tarball" ]]; then
		echo "install-libchdb: npm pack $pkg@$version produced no tarball" >&2
		exit 1
	fi
fi

echo "install-libchdb: unpacking libchdb.so from $tarball" >&2
tar -xzf "$tarball" -C "$work" package/libchdb.so
# $work is beside the target, so this rename is atomic: a concurrent or
# interrupted run never leaves a truncated library at the target path.
mv -f "$work/package/libchdb.so" "$target"
printf '%s\n' "$target"
