# Shell functions that the .ci scripts share. Source it:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# port_free reports whether nothing accepts connections on the port.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a port nothing listens on.
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		if port_free "$p"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# stop_server stops the process $1, when given and running (SIGTERM, then
# SIGKILL after 30 s), and removes the directory $2, when given: a server
# that clickhouse.sh or hydra.sh started, with its files.
stop_server() {
	local pid="${1:-}" dir="${2:-}"
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 60); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	if [[ -n "$dir" && -d "$dir" ]]; then
		rm -rf "$dir"
	fi
}
