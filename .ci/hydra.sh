#!/usr/bin/env bash
# Starts a throwaway Ory Hydra v2.3.0 (an OAuth 2.0 and OpenID Connect
# server) for the integration tests and prints the shell lines that export
# its URLs and process id:
#
#   eval "$(bash .ci/hydra.sh)"
#   ... tests use $REVOKED_TEST_HYDRA_PUBLIC and $REVOKED_TEST_HYDRA_ADMIN ...
#   REVOKED_HYDRA_STOP=1 bash .ci/hydra.sh
#
# Builds Hydra from its Go module source the first time and keeps the
# binary in ${XDG_CACHE_HOME:-$HOME/.cache}/revoked/hydra-v2.3.0/hydra.
# `go install github.com/ory/hydra/v2@v2.3.0` refuses the module because
# its go.mod has replace directives, so the module's source (from the Go
# module proxy, through `go mod download`) is copied to a temporary
# directory and built there. One of the replaces points the client SDK
# github.com/ory/hydra-client-go/v2 at ./internal/httpclient, which the
# module zip leaves out (it is a module of its own); the copy drops that
# replace and uses the published SDK at the version go.mod already
# requires (v2.2.1, the newest the module proxy has: there is no v2.3.0;
# only the CLI's client commands use it, through cmd/ and
# jwk.OnlyPublicSDKKeys, never the server). The other replace
# (gobuffalo/pop to ory/pop) stays, and is why `go install` fails. The build
# uses the tags and CGO of Hydra's own Makefile and Dockerfile (sqlite,
# sqlite_omit_load_extension: mattn/go-sqlite3, which needs a C compiler).
#
# The first build takes about two and a half minutes on a 2-core machine:
# 140 s measured with empty Go module and build caches (GOMODCACHE,
# GOCACHE), downloading 160 modules (315 MB in the module cache, 470 MB of
# build cache), about 95 s when Go's caches already hold part of it, and
# 6 s (a link) when only the binary is missing. The binary is 42 MB. Later
# runs find it and start the server in under two seconds (migrations
# included).
#
# The server runs as an ordinary background process: `hydra serve all
# --dev` (plain HTTP) on 127.0.0.1, on two free ports (public and admin),
# with its SQLite database and log in a new temporary directory, migrated
# with `hydra migrate sql up`. Its issuer is the public URL with a
# trailing slash; the login and consent URLs point at a placeholder that
# nothing serves, because tests accept login and consent through the admin
# API (internal/testenv/hydratest does). Access tokens are opaque (Hydra's
# default), so only introspection tells whether one is still active.
# Everything but the export lines goes to stderr.
#
# What it exports:
#
#   REVOKED_TEST_HYDRA_PUBLIC  the public URL (OAuth 2.0 endpoints:
#                              /oauth2/auth, /oauth2/token, /oauth2/revoke)
#   REVOKED_TEST_HYDRA_ADMIN   the admin URL (/admin/clients,
#                              /admin/oauth2/introspect, login and consent
#                              requests, sessions); no authentication
#   REVOKED_HYDRA_PID          the server's process id
#   REVOKED_HYDRA_DIR          its temporary directory (database, log)
#
# Environment (all optional):
#   REVOKED_HYDRA_BIN   a hydra binary to use instead of the cached build
#   REVOKED_HYDRA_STOP  when set (1), stops the server named by
#                       REVOKED_HYDRA_PID and removes REVOKED_HYDRA_DIR,
#                       printing nothing
#   REVOKED_HYDRA_BUILD_ONLY
#                       when set (1), builds (or finds) the binary and
#                       prints its path instead of starting a server
#
# When REVOKED_TEST_HYDRA_ADMIN is already set, nothing is started and the
# existing variables are printed again.
set -euo pipefail

log() { echo "hydra.sh: $*" >&2; }

version=v2.3.0
# The published client SDK that replaces the module's internal/httpclient.
client_version=v2.2.1

# port_free, free_port, stop_server
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -n "${REVOKED_HYDRA_STOP:-}" ]]; then
	stop_server "${REVOKED_HYDRA_PID:-}" "${REVOKED_HYDRA_DIR:-}"
	exit 0
fi

if [[ -n "${REVOKED_TEST_HYDRA_ADMIN:-}" && -z "${REVOKED_HYDRA_BUILD_ONLY:-}" ]]; then
	log "using the existing REVOKED_TEST_HYDRA_ADMIN"
	for v in REVOKED_TEST_HYDRA_PUBLIC REVOKED_TEST_HYDRA_ADMIN REVOKED_HYDRA_PID REVOKED_HYDRA_DIR; do
		if [[ -n "${!v:-}" ]]; then
			printf 'export %s=%q\n' "$v" "${!v}"
		fi
	done
	exit 0
fi

export PATH="$PATH:/usr/local/go/bin"

# build_hydra builds Hydra $version into the file $1. A subshell, so its
# EXIT trap removes the build directory however the build ends.
build_hydra() (
	target="$1"
	command -v go >/dev/null || {
		log "go is needed to build Hydra (looked on PATH and in /usr/local/go/bin)"
		exit 1
	}
	command -v "${CC:-gcc}" >/dev/null || {
		log "a C compiler (${CC:-gcc}) is needed for Hydra's SQLite driver"
		exit 1
	}
	log "building Hydra $version from github.com/ory/hydra/v2@$version ($(go version)); the first build takes minutes"
	# From /, outside this repository's module: the download is on its own.
	src="$(cd / && GOWORK=off go mod download -json "github.com/ory/hydra/v2@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	if [[ -z "$src" || ! -f "$src/go.mod" ]]; then
		log "go mod download github.com/ory/hydra/v2@$version gave no module directory"
		exit 1
	fi
	mkdir -p "$(dirname "$target")"
	work="$(mktemp -d "$(dirname "$target")/.build.XXXXXX")"
	trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
	# The module cache is read-only; the copy must be writable for go.mod.
	cp -R "$src/." "$work/src"
	chmod -R u+w "$work/src"
	(
		cd "$work/src"
		# -mod=mod lets go build add what the edited go.mod still lacks.
		export GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=1
		go mod edit -dropreplace=github.com/ory/hydra-client-go/v2 \
			-require="github.com/ory/hydra-client-go/v2@$client_version"
		# Adds the SDK's go.sum lines; every other module is already pinned.
		go mod download github.com/ory/hydra-client-go/v2
		go build -trimpath \
			-tags sqlite,sqlite_omit_load_extension \
			-ldflags "-s -w -X github.com/ory/hydra/v2/driver/config.Version=$version" \
			-o "$work/hydra" .
	) >&2
	# $work is beside the target, so this rename is atomic: a concurrent or
	# interrupted build never leaves a truncated binary at the target path.
	mv -f "$work/hydra" "$target"
)

bin="${REVOKED_HYDRA_BIN:-}"
if [[ -z "$bin" ]]; then
	bin="${XDG_CACHE_HOME:-$HOME/.cache}/revoked/hydra-$version/hydra"
	if [[ ! -x "$bin" ]]; then
		start=$SECONDS
		build_hydra "$bin"
		log "built $bin in $((SECONDS - start)) s"
	fi
fi
if [[ ! -x "$bin" ]]; then
	log "$bin is not an executable file"
	exit 1
fi
if [[ -n "${REVOKED_HYDRA_BUILD_ONLY:-}" ]]; then
	printf '%s\n' "$bin"
	exit 0
fi

# ready reports whether GET /health/ready on port $1 answers 200 (plain
# HTTP/1.0 over bash's /dev/tcp, so no curl is needed).
ready() {
	local status=""
	{
		exec 3<>"/dev/tcp/127.0.0.1/$1" &&
			printf 'GET /health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
			read -r -t 2 status <&3
	} 2>/dev/null || true
	exec 3>&-
	[[ "$status" == "HTTP/1."?" 200 "* ]]
}

dir="$(mktemp -d "${TMPDIR:-/tmp}/revoked-hydra.XXXXXX")"
# Unless the server starts, nothing is left behind.
started=""
trap '[[ -n "$started" ]] || rm -rf "$dir"' EXIT

# Hydra reads its configuration from the environment (DSN, SECRETS_SYSTEM,
# URLS_SELF_ISSUER, SERVE_PUBLIC_PORT, ...: the keys of its config file,
# upper-cased, dots as underscores).
export DSN="sqlite://$dir/hydra.sqlite?_fk=true"
# Fixed, so tokens stay valid across a restart on the same database. Only
# for tests: the server listens on loopback and lives as long as the run.
export SECRETS_SYSTEM="revoked-test-hydra-system-secret-0001"
# Nothing serves these: tests read the login and consent challenges from
# the redirects and accept them through the admin API.
export URLS_LOGIN="http://login.invalid/login"
export URLS_CONSENT="http://consent.invalid/consent"
export URLS_ERROR="http://error.invalid/error"
export SERVE_PUBLIC_HOST=127.0.0.1 SERVE_ADMIN_HOST=127.0.0.1
export LOG_LEVEL=info LOG_FORMAT=text
# No anonymous usage reports to Ory from test runs.
export SQA_OPT_OUT=true

log "migrating $DSN"
"$bin" migrate sql up -e --yes >"$dir/migrate.log" 2>&1 || {
	log "hydra migrate sql up failed:"
	tail -n 30 "$dir/migrate.log" >&2
	exit 1
}

for attempt in 1 2 3 4 5; do
	public_port="$(free_port)" && admin_port="$(free_port)" || continue
	[[ "$public_port" != "$admin_port" ]] || continue
	public="http://127.0.0.1:$public_port"
	admin="http://127.0.0.1:$admin_port"
	# setsid and redirected streams detach the server from this script, so
	# the caller's command substitution returns while the server runs on.
	# --dev: plain HTTP and cookies without the Secure flag.
	SERVE_PUBLIC_PORT="$public_port" SERVE_ADMIN_PORT="$admin_port" URLS_SELF_ISSUER="$public/" \
		setsid "$bin" serve all --dev --sqa-opt-out \
		>"$dir/hydra.log" 2>&1 </dev/null &
	pid=$!
	for _ in $(seq 1 120); do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		if ready "$admin_port" && ready "$public_port"; then
			log "Hydra $("$bin" version 2>/dev/null | sed -n 's/^Version:[[:space:]]*//p') (pid $pid): public $public, admin $admin, files in $dir"
			printf 'export REVOKED_TEST_HYDRA_PUBLIC=%q\n' "$public"
			printf 'export REVOKED_TEST_HYDRA_ADMIN=%q\n' "$admin"
			printf 'export REVOKED_HYDRA_PID=%q\n' "$pid"
			printf 'export REVOKED_HYDRA_DIR=%q\n' "$dir"
			started=1
			exit 0
		fi
		sleep 0.25
	done
	log "Hydra on ports $public_port and $admin_port did not come up (attempt $attempt); its log:"
	tail -n 30 "$dir/hydra.log" >&2 || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
log "could not start Hydra"
exit 1
