#!/usr/bin/env bash
# Starts a throwaway ClickHouse server for the tests and prints the shell
# lines that export its DSNs and process id:
#
#   eval "$(bash .ci/clickhouse.sh)"
#   ... tests use $REVOKED_TEST_CLICKHOUSE_DSN ...
#   kill "$REVOKED_CLICKHOUSE_PID"; rm -rf "$REVOKED_CLICKHOUSE_DIR"
#
# Installs clickhouse-server and clickhouse-client with apt-get when they
# are missing (Debian ships 18.16), and zookeeper (Debian's, on the JRE
# that is there). The server runs as an ordinary background process, not a
# system service: its config, data and logs live in a new temporary
# directory, it listens on 127.0.0.1 only, on a free port, native protocol
# only. Everything but the export lines goes to stderr.
#
# What it exports:
#
#   REVOKED_TEST_CLICKHOUSE_DSN       the default user: creates and drops
#                                     the tests' databases
#   REVOKED_TEST_CLICKHOUSE_READ_DSN  revoked_reader, a user whose profile
#                                     has readonly=2: it reads, and may
#                                     send settings with a query (as
#                                     clickhouse-go does), but cannot
#                                     INSERT, CREATE, ALTER or DROP
#   REVOKED_TEST_CLICKHOUSE_READONLY1_DSN
#                                     revoked_reader_strict, readonly=1:
#                                     not even settings (the test that
#                                     shows why the reader needs 2)
#   REVOKED_TEST_CLICKHOUSE_CLUSTER   a one-shard, one-replica cluster in
#                                     <remote_servers>, with the {shard}
#                                     and {replica} macros and a ZooKeeper
#                                     for replicated tables and ON CLUSTER
#                                     DDL; unset when no ZooKeeper could
#                                     be started
#
# ZooKeeper runs beside the server (standalone, 127.0.0.1, a free port,
# files in a directory of its own) and is stopped, and its files removed,
# by a watchdog within a second of the server stopping: stopping the
# server as above stops everything.
#
# When REVOKED_TEST_CLICKHOUSE_DSN is already set, nothing is started and
# the existing variables are printed again.
set -euo pipefail

log() { echo "clickhouse.sh: $*" >&2; }

if [[ -n "${REVOKED_TEST_CLICKHOUSE_DSN:-}" ]]; then
	log "using the existing REVOKED_TEST_CLICKHOUSE_DSN"
	for v in REVOKED_TEST_CLICKHOUSE_DSN REVOKED_TEST_CLICKHOUSE_READ_DSN REVOKED_TEST_CLICKHOUSE_READONLY1_DSN REVOKED_TEST_CLICKHOUSE_CLUSTER; do
		if [[ -n "${!v:-}" ]]; then
			printf 'export %s=%q\n' "$v" "${!v}"
		fi
	done
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

sudo=""
if [[ "$(id -u)" != 0 ]]; then
	sudo="sudo"
fi
apt_updated=""
# apt_install installs Debian packages, updating the package lists once.
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	if [[ -z "$apt_updated" ]]; then
		$sudo apt-get update -qq >&2
		apt_updated=1
	fi
	$sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

if ! server="$(find_server)" || ! client="$(find_client)"; then
	log "installing clickhouse-server and clickhouse-client with apt-get"
	# The package's postinst tries to start the system service; where that is
	# not allowed (containers, policy-rc.d) it fails harmlessly: this script
	# starts its own server below.
	apt_install clickhouse-server clickhouse-client ||
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

zk_jar=/usr/share/java/zookeeper.jar
if [[ ! -f "$zk_jar" ]] || ! command -v java >/dev/null 2>&1; then
	log "installing zookeeper with apt-get (for the cluster tests)"
	apt_install zookeeper || log "apt-get install zookeeper reported an error"
fi

# free_port and port_free.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$(mktemp -d "${TMPDIR:-/tmp}/revoked-clickhouse.XXXXXX")"
mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"

# The read-only users' passwords: random per server, stored hashed.
reader_password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
reader_sha256="$(printf '%s' "$reader_password" | sha256sum | cut -d' ' -f1)"

cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
        <!-- readonly=2: reads, and may change settings for a query (every
             clickhouse-go query under a deadline carries
             max_execution_time), but no INSERT, CREATE, ALTER or DROP. -->
        <reader>
            <max_memory_usage>4000000000</max_memory_usage>
            <readonly>2</readonly>
        </reader>
        <!-- readonly=1: reads only, and refuses any setting a query sends. -->
        <reader_strict>
            <max_memory_usage>4000000000</max_memory_usage>
            <readonly>1</readonly>
        </reader_strict>
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
        <revoked_reader>
            <password_sha256_hex>$reader_sha256</password_sha256_hex>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>reader</profile>
            <quota>default</quota>
        </revoked_reader>
        <revoked_reader_strict>
            <password_sha256_hex>$reader_sha256</password_sha256_hex>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>reader_strict</profile>
            <quota>default</quota>
        </revoked_reader_strict>
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

# ZooKeeper, standalone, for ReplicatedReplacingMergeTree and ON CLUSTER.
# Its files live beside the server's directory, not in it, so removing the
# server's directory never races a ZooKeeper still writing; the watchdog
# started with the server removes them.
zk_pid=""
zk_port=""
zk_dir=""
zk_ok() {
	local reply=""
	{ exec 3<>"/dev/tcp/127.0.0.1/$zk_port" && printf ruok >&3 && read -r -t 2 reply <&3; } 2>/dev/null || true
	exec 3>&-
	[[ "$reply" == imok ]]
}
stop_zk() {
	if [[ -n "$zk_pid" ]]; then
		kill "$zk_pid" 2>/dev/null || true
		wait "$zk_pid" 2>/dev/null || true
	fi
	[[ -z "$zk_dir" ]] || rm -rf "$zk_dir"
}
# Unless the server starts, nothing is left running.
started=""
trap '[[ -n "$started" ]] || stop_zk' EXIT
if [[ -f "$zk_jar" ]] && command -v java >/dev/null 2>&1 && zk_port="$(free_port)"; then
	zk_dir="$dir.zookeeper"
	mkdir -p "$zk_dir/data"
	cat >"$zk_dir/zoo.cfg" <<CFG
tickTime=500
dataDir=$zk_dir/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok
CFG
	setsid java -Xmx256m -cp "$zk_jar:/etc/zookeeper/conf" org.apache.zookeeper.server.ZooKeeperServerMain "$zk_dir/zoo.cfg" \
		>"$zk_dir/zookeeper.log" 2>&1 </dev/null &
	zk_pid=$!
	for _ in $(seq 1 120); do
		if zk_ok || ! kill -0 "$zk_pid" 2>/dev/null; then
			break
		fi
		sleep 0.25
	done
	if zk_ok; then
		log "ZooKeeper (pid $zk_pid) on 127.0.0.1:$zk_port"
	else
		log "ZooKeeper did not come up; no cluster for the tests. Its log:"
		tail -n 20 "$zk_dir/zookeeper.log" >&2 || true
		stop_zk
		zk_pid="" zk_port="" zk_dir=""
	fi
else
	log "no ZooKeeper ($zk_jar and java): no cluster for the tests"
	zk_port=""
fi

cluster=revoked_test_cluster

write_config() {
	local cluster_xml=""
	if [[ -n "$zk_port" ]]; then
		# One shard of one replica: this server. ON CLUSTER DDL runs through
		# ZooKeeper's task queue and is executed by the server that finds
		# itself (host and tcp_port) in the cluster. A replicated table's
		# replica is active only with an interserver HTTP port (replicas
		# fetch parts from each other over it): without one, a replicated
		# ALTER (a migration adding a column) never finishes ("Alter is not
		# finished because some replicas are inactive").
		cluster_xml="
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>$2</interserver_http_port>
    <zookeeper>
        <node><host>127.0.0.1</host><port>$zk_port</port></node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>
    <remote_servers>
        <$cluster>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$1</port></replica>
            </shard>
        </$cluster>
    </remote_servers>
    <macros>
        <shard>01</shard>
        <replica>replica1</replica>
    </macros>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>"
	fi
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
    <mlock_executable>false</mlock_executable>$cluster_xml
</yandex>
XML
}

for attempt in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 20000))
	port_free "$port" || continue
	interserver_port="$(free_port)" || continue
	[[ "$interserver_port" != "$port" ]] || continue
	write_config "$port" "$interserver_port"
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
			if [[ -n "$zk_pid" ]]; then
				# The watchdog stops ZooKeeper and removes its files once the
				# server has stopped, however it was stopped.
				setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
					kill "$2" 2>/dev/null
					for _ in $(seq 1 20); do kill -0 "$2" 2>/dev/null || break; sleep 0.5; done
					kill -9 "$2" 2>/dev/null
					rm -rf "$3"' zookeeper-watchdog "$pid" "$zk_pid" "$zk_dir" >/dev/null 2>&1 </dev/null &
			fi
			printf 'export REVOKED_TEST_CLICKHOUSE_DSN=%q\n' "clickhouse://default:@127.0.0.1:$port/default"
			printf 'export REVOKED_TEST_CLICKHOUSE_READ_DSN=%q\n' "clickhouse://revoked_reader:$reader_password@127.0.0.1:$port/default"
			printf 'export REVOKED_TEST_CLICKHOUSE_READONLY1_DSN=%q\n' "clickhouse://revoked_reader_strict:$reader_password@127.0.0.1:$port/default"
			if [[ -n "$zk_pid" ]]; then
				printf 'export REVOKED_TEST_CLICKHOUSE_CLUSTER=%q\n' "$cluster"
			fi
			printf 'export REVOKED_CLICKHOUSE_PID=%q\n' "$pid"
			printf 'export REVOKED_CLICKHOUSE_DIR=%q\n' "$dir"
			started=1
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
