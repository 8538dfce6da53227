#!/usr/bin/env bash
# Starts a throwaway ClickHouse server for the tests and prints the shell
# lines that export its DSN and process id:
#
#   eval "$(bash .ci/clickhouse.sh)"
#   ... tests use $REVOKED_TEST_CLICKHOUSE_DSN ...
#   kill "$REVOKED_CLICKHOUSE_PID"; rm -rf "$REVOKED_CLICKHOUSE_DIR"
#
# Installs clickhouse-server and clickhouse-client with apt-get when they
# are missing (Debian ships 18.16). The server runs as an ordinary
# background process, not a system service: its config, data and logs live
# in a new temporary directory, it listens on 127.0.0.1 only, on a free
# port, native protocol only. Everything but the export lines goes to
# stderr.
#
# When REVOKED_TEST_CLICKHOUSE_DSN is already set, nothing is started and
# the existing DSN is printed again.
set -euo pipefail

log() { echo "clickhouse.sh: $*" >&2; }

if [[ -n "${REVOKED_TEST_CLICKHOUSE_DSN:-}" ]]; then
	log "using the existing REVOKED_TEST_CLICKHOUSE_DSN"
	printf 'export REVOKED_TEST_CLICKHOUSE_DSN=%q\n' "$REVOKED_TEST_CLICKHOUSE_DSN"
	exit 0
fi

find_server() {
	local c
	for c in clickhouse-server /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	# Newer packages ship one multi-call binary.
	for c in clickhouse /usr/bin/clickhouse; do
		if command -v "$c" >/dev/null 2>&1; then
			echo "$(command -v "$c") server"
			return 0
		fi
	done
	return 1
}

find_client() {
	local c
	for c in clickhouse-client /usr/bin/clickhouse-client; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	if command -v clickhouse >/dev/null 2>&1; then
		echo "$(command -v clickhouse) client"
		return 0
	fi
	return 1
}

if ! server="$(find_server)" || ! client="$(find_client)"; then
	log "installing clickhouse-server and clickhouse-client with apt-get"
	sudo=""
	if [[ "$(id -u)" != 0 ]]; then
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >&2
	# The package's postinst tries to start the system service; where that is
	# not allowed (containers, policy-rc.d) it fails harmlessly: this script
	# starts its own server below.
	$sudo apt-get install -y -qq --no-install-recommends clickhouse-server clickhouse-client >&2 ||
		log "apt-get install reported an error; checking whether the binaries are there anyway"
	server="$(find_server)" || {
		log "clickhouse-server is still missing"
		exit 1
	}
	client="$(find_client)" || {
		log "clickhouse-client is still missing"
		exit 1
	}
fi

# port_free reports whether nothing accepts connections on the port.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/revoked-clickhouse.XXXXXX")"
mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"

cat >"$dir/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML

write_config() {
	cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$1</tcp_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
XML
}

for attempt in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 20000))
	port_free "$port" || continue
	write_config "$port"
	# setsid and redirected streams detach the server from this script, so
	# the caller's command substitution returns while the server runs on.
	# shellcheck disable=SC2086 # $server may be "clickhouse server"
	setsid $server --config-file="$dir/config.xml" \
		>"$dir/log/stdout.log" 2>"$dir/log/stderr.log" </dev/null &
	pid=$!
	for _ in $(seq 1 120); do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		# shellcheck disable=SC2086 # $client may be "clickhouse client"
		if $client --host 127.0.0.1 --port "$port" --query "SELECT 1" >/dev/null 2>&1; then
			version="$($client --host 127.0.0.1 --port "$port" --query "SELECT version()" 2>/dev/null)"
			log "ClickHouse $version (pid $pid) on 127.0.0.1:$port, files in $dir"
			printf 'export REVOKED_TEST_CLICKHOUSE_DSN=%q\n' "clickhouse://default:@127.0.0.1:$port/default"
			printf 'export REVOKED_CLICKHOUSE_PID=%q\n' "$pid"
			printf 'export REVOKED_CLICKHOUSE_DIR=%q\n' "$dir"
			exit 0
		fi
		sleep 0.5
	done
	log "server on port $port did not come up (attempt $attempt); its logs:"
	tail -n 30 "$dir/log/stderr.log" "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
log "could not start clickhouse-server"
exit 1
