#!/usr/bin/env bash
# testenv.sh — private Redis and ClickHouse servers for Tollgate's tests
# (and Chromium for the dashboard's browser test).
#
# Usage:
#   scripts/testenv.sh install          install the packages (servers, Chromium)
#                                       if missing
#   scripts/testenv.sh -- COMMAND...    start both servers, run COMMAND with
#                                       TOLLGATE_TEST_* set, stop the servers
#   scripts/testenv.sh run COMMAND...   same as the form above
#   scripts/testenv.sh clickhouse-config DIR TCP_PORT HTTP_PORT
#                                       write a private ClickHouse's config.xml
#                                       and users.xml (and folders) into DIR
#   scripts/testenv.sh redis-args PORT DIR
#                                       print a private redis-server's
#                                       arguments, each ended by a NUL byte
# The last two are the one definition of a private server's configuration:
# this script's own servers and internal/testenv's StartClickHouse and
# StartRedis (which run them with bash) both use them.
#
# Why a script and not containers: the project's machines reach only Debian's
# packages and the Go module proxy, so the servers come from apt (Redis 7,
# ClickHouse 18.16) and run as plain processes on loopback ports under one
# temporary folder that is removed afterwards. Nothing is installed as a
# service and nothing listens on the default ports, so several runs (or a
# developer's own servers) can coexist.
#
# COMMAND sees (the contract internal/testenv reads):
#   TOLLGATE_TEST_REQUIRE_SERVERS=1      tests needing a server fail, not skip
#   TOLLGATE_TEST_REDIS                  redis://127.0.0.1:PORT
#   TOLLGATE_TEST_REDIS_ADDR             127.0.0.1:PORT
#   TOLLGATE_TEST_REDIS_SERVER           path of redis-server
#   TOLLGATE_TEST_REDIS_DIR, _PID        its working dir and process id
#   TOLLGATE_TEST_CLICKHOUSE             clickhouse://127.0.0.1:PORT (native)
#   TOLLGATE_TEST_CLICKHOUSE_ADDR        127.0.0.1:PORT (native)
#   TOLLGATE_TEST_CLICKHOUSE_HTTP        http://127.0.0.1:PORT
#   TOLLGATE_TEST_CLICKHOUSE_SERVER      executable taking --config-file=PATH
#   TOLLGATE_TEST_CLICKHOUSE_CLIENT      clickhouse-client command, if any
#   TOLLGATE_TEST_CLICKHOUSE_CONFIG      its config.xml
#   TOLLGATE_TEST_CLICKHOUSE_DATA, _PID  its data folder and process id
#   TOLLGATE_TEST_TMPDIR                 the run's temporary folder
#   TOLLGATE_TEST_CHROMIUM               Chromium, for the dashboard's browser
#                                        test (installed like the servers)
# storage/chcluster starts its own ZooKeeper (Debian's zookeeper package,
# installed here) and a replicated ClickHouse cluster (internal/testenv's
# StartClickHouseCluster) under TOLLGATE_TEST_TMPDIR.
# These servers are shared by every test package running at once: tests that
# stop or restart a server should start their own (testenv.StartRedis,
# testenv.StartClickHouse). Servers left running under TOLLGATE_TEST_TMPDIR
# are stopped at exit too.
#
# Knobs (environment):
#   TOLLGATE_TESTENV_START_TIMEOUT  seconds to wait for each server (default 60)
#   TOLLGATE_TESTENV_KEEP=1         keep the temporary folder (for debugging)
#   TOLLGATE_TESTENV_NO_INSTALL=1   never call apt-get; fail if servers missing
set -euo pipefail

readonly START_TIMEOUT="${TOLLGATE_TESTENV_START_TIMEOUT:-60}"
# ClickHouse 18.16 takes ~1 s (up to a few with open connections) to stop
# gracefully; 15 s leaves room for a loaded machine before we SIGKILL.
readonly CH_STOP_TIMEOUT=15
readonly REDIS_STOP_TIMEOUT=5

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now_ms() {
	# date +%s%N is GNU-only, which is what Debian has; good enough for
	# the human-readable timings printed below.
	echo $(($(date +%s%N) / 1000000))
}

# ---------------------------------------------------------------- install ---

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -- "$@"
	else
		die "need root or sudo to run: $*"
	fi
}

# find_bin NAME: print the path of NAME, also looking in the sbin folders
# because Debian puts clickhouse-server in /usr/sbin, which is not on a
# normal user's PATH.
find_bin() {
	local name=$1 dir
	if command -v "$name" >/dev/null 2>&1; then
		command -v "$name"
		return 0
	fi
	for dir in /usr/sbin /sbin /usr/local/sbin /usr/local/bin /usr/bin; do
		if [[ -x "$dir/$name" ]]; then
			echo "$dir/$name"
			return 0
		fi
	done
	return 1
}

# find_chromium: print the path of Debian's Chromium (/usr/bin/chromium), or
# of a chromium on PATH.
find_chromium() {
	if [[ -x /usr/bin/chromium ]]; then
		echo /usr/bin/chromium
		return 0
	fi
	find_bin chromium
}

install_packages() {
	local pkgs=()
	find_bin redis-server >/dev/null || pkgs+=(redis-server)
	find_bin redis-cli >/dev/null || pkgs+=(redis-tools)
	# Upstream ClickHouse packages ship one multi-call binary "clickhouse";
	# Debian's ship clickhouse-server and clickhouse-client. Either will do.
	if ! find_bin clickhouse-server >/dev/null && ! find_bin clickhouse >/dev/null; then
		pkgs+=(clickhouse-server)
	fi
	if ! find_bin clickhouse-client >/dev/null && ! find_bin clickhouse >/dev/null; then
		pkgs+=(clickhouse-client)
	fi
	# storage/chcluster's replicated ClickHouse cluster needs ZooKeeper
	# (internal/testenv starts it from the package's jars; the package
	# brings Java).
	[[ -f /usr/share/java/zookeeper.jar && -f /usr/share/java/slf4j-simple.jar ]] || pkgs+=(zookeeper libslf4j-java)
	# go test -race needs cgo and so a C compiler; a bare machine may lack one.
	if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
		pkgs+=(gcc libc6-dev)
	fi
	# The dashboard's browser test drives Debian's Chromium (headless).
	find_chromium >/dev/null || pkgs+=(chromium)
	# internal/sdktest runs the official OpenAI and Anthropic Node SDKs.
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	if [[ ${#pkgs[@]} -eq 0 ]]; then
		return 0
	fi
	if [[ "${TOLLGATE_TESTENV_NO_INSTALL:-}" == 1 ]]; then
		die "missing packages (${pkgs[*]}) and TOLLGATE_TESTENV_NO_INSTALL=1"
	fi
	command -v apt-get >/dev/null 2>&1 || die "missing ${pkgs[*]} and no apt-get to install them"

	local t0 policy_added=0
	t0=$(now_ms)
	log "installing ${pkgs[*]} with apt-get"
	# Debian's maintainer scripts start the packaged services (a system Redis
	# on 6379, ClickHouse on 9000) unless policy-rc.d forbids it. We want
	# only our private instances, so forbid it for the duration of the
	# install when the machine has no policy of its own.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		as_root sh -c 'printf "#!/bin/sh\n# added by tollgate scripts/testenv.sh during apt-get install\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
		policy_added=1
	fi
	# Lock timeout: a concurrent apt-get (another make test, say) is waited
	# for instead of failing at once.
	local rc=0
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q || rc=$?
	if [[ $rc -eq 0 ]]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
			--no-install-recommends "${pkgs[@]}" || rc=$?
	fi
	if [[ $policy_added -eq 1 ]]; then
		as_root rm -f /usr/sbin/policy-rc.d
	fi
	[[ $rc -eq 0 ]] || die "apt-get failed (exit $rc)"
	log "installed in $(($(now_ms) - t0)) ms"
}

# ------------------------------------------------------------------ ports ---

declare -a PICKED_PORTS=()

port_in_use() {
	local p=$1
	# A successful connect means someone listens there. bash's /dev/tcp needs
	# no extra tool; ss (if present) also catches sockets bound but not
	# accepting and listeners on other loopback addresses.
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		return 0
	fi
	if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]]; then
		return 0
	fi
	return 1
}

# pick_port: print a loopback TCP port nobody listens on. It picks below the
# kernel's ephemeral range so that outgoing connections of the tests cannot
# grab the port between our check and the server's bind.
pick_port() {
	local lo=20000 hi=32767 eph_lo p i
	if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
		read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range
		if ((eph_lo > lo + 1000)); then
			hi=$((eph_lo - 1))
		fi
	fi
	for ((i = 0; i < 200; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		if [[ " ${PICKED_PORTS[*]} " == *" $p "* ]]; then
			continue
		fi
		if ! port_in_use "$p"; then
			PICKED_PORTS+=("$p")
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# ------------------------------------------------------------ processes ---

# Recorded PIDs of the servers this run started; cleanup stops exactly these
# (plus processes a test restarted from this run's own folder, see below).
REDIS_PID=""
CH_PID=""
CHILD_PID=""
TMP=""

# is_alive PID NAME: true if PID runs and is still the program we started
# (guards against a recycled PID after the server died on its own).
is_alive() {
	local pid=$1 name=$2 cmd
	[[ -n "$pid" ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# A zombie (exited, not yet reaped by its parent) counts as gone.
	if [[ -r "/proc/$pid/stat" ]] && [[ "$(cut -d')' -f2 "/proc/$pid/stat" 2>/dev/null)" == " Z"* ]]; then
		return 1
	fi
	if [[ -r "/proc/$pid/cmdline" ]]; then
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
		[[ "$cmd" == *"$name"* ]] || return 1
	fi
	return 0
}

# wait_gone PID NAME SECONDS: poll until PID is gone; false on timeout.
wait_gone() {
	local pid=$1 name=$2 secs=$3 deadline
	deadline=$(($(now_ms) + secs * 1000))
	while is_alive "$pid" "$name"; do
		if (($(now_ms) > deadline)); then
			return 1
		fi
		sleep 0.05
	done
	return 0
}

# stop_pids SECONDS NAME PID...: SIGTERM, wait, SIGKILL what is left.
stop_pids() {
	local secs=$1 name=$2 pid
	shift 2
	for pid in "$@"; do
		is_alive "$pid" "$name" && kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "$@"; do
		if ! wait_gone "$pid" "$name" "$secs"; then
			log "$name (pid $pid) ignored SIGTERM for ${secs}s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" "$name" 5 || log "$name (pid $pid) survived SIGKILL"
		fi
	done
}

# strays: PIDs of server processes, other than the recorded ones, that belong
# to this run's unique temporary folder — a server that a test killed and
# restarted from TOLLGATE_TEST_CLICKHOUSE_CONFIG / TOLLGATE_TEST_REDIS_DIR.
# Belonging means the command line names the folder (ClickHouse's
# --config-file) or the working directory is inside it (Redis chdirs to its
# --dir and rewrites its command line to "redis-server host:port"). The
# mktemp path is unique to this run, so no one else's process can match.
strays() {
	local d pid cmd cwd
	[[ -n "$TMP" && -d /proc ]] || return 0
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[[ "$pid" == "$$" || "$pid" == "$REDIS_PID" || "$pid" == "$CH_PID" ]] && continue
		[[ -r "$d/cmdline" ]] || continue
		cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null || true)
		[[ "$cmd" == *redis-server* || "$cmd" == *clickhouse* || "$cmd" == *ZooKeeperServerMain* ]] || continue
		cwd=$(readlink "$d/cwd" 2>/dev/null || true)
		if [[ "$cmd" == *"$TMP/"* || "$cwd/" == "$TMP/"* ]]; then
			echo "$pid"
		fi
	done
}

cleanup() {
	local rc=$?
	# Cleanup must finish even if the user presses Ctrl-C again.
	trap '' INT TERM
	set +e
	if [[ -n "$CHILD_PID" ]] && kill -0 "$CHILD_PID" 2>/dev/null; then
		# on_signal already gave it SIGTERM/SIGINT and 10 s; the servers
		# must not be stopped under a command that is still using them.
		kill -KILL "$CHILD_PID" 2>/dev/null
		wait "$CHILD_PID" 2>/dev/null
	fi
	local t0 extra
	t0=$(now_ms)
	extra=$(strays)
	if [[ -n "$extra" ]]; then
		log "stopping servers restarted by the tests under $TMP: $(echo $extra)"
	fi
	# Stop both at once: ClickHouse's graceful stop dominates.
	if [[ -n "$CH_PID$REDIS_PID$extra" ]]; then
		# shellcheck disable=SC2086 # word splitting of $extra is wanted
		stop_pids "$CH_STOP_TIMEOUT" clickhouse $CH_PID $(for p in $extra; do grep -qa clickhouse "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done) &
		local chstop=$!
		# shellcheck disable=SC2086
		stop_pids "$REDIS_STOP_TIMEOUT" redis-server $REDIS_PID $(for p in $extra; do grep -qaE 'redis-server|ZooKeeperServerMain' "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done)
		wait "$chstop"
		log "servers stopped in $(($(now_ms) - t0)) ms"
	fi
	if [[ -n "$TMP" && -d "$TMP" ]]; then
		if [[ "${TOLLGATE_TESTENV_KEEP:-}" == 1 ]]; then
			log "keeping $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}

on_signal() {
	local sig=$1 code=$2
	log "caught SIG$sig"
	if [[ -n "$CHILD_PID" ]] && kill -0 "$CHILD_PID" 2>/dev/null; then
		# Pass the signal on so the command can finish its own cleanup
		# (go test prints its results, tollgate dev shuts down).
		kill "-$sig" "$CHILD_PID" 2>/dev/null || true
		local deadline=$(($(now_ms) + 10000))
		while kill -0 "$CHILD_PID" 2>/dev/null && (($(now_ms) < deadline)); do
			sleep 0.1
		done
	fi
	exit "$code"
}

show_logs() {
	local f
	for f in "$@"; do
		[[ -f "$f" ]] || continue
		log "---- last lines of ${f#"$TMP"/} ----"
		tail -n 60 "$f" >&2 || true
	done
}

# ------------------------------------------------------------------ redis ---

# The servers run in a session of their own (setsid), out of the terminal's
# process group: Ctrl-C then reaches the command (say `tollgate dev`, which
# flushes its last batches to ClickHouse while shutting down) but not the
# servers, which cleanup stops once the command is done. A background job of
# this non-interactive shell is not a process-group leader, so setsid does
# not fork and $! stays the server's PID.
DETACH=()
if command -v setsid >/dev/null 2>&1; then
	DETACH=(setsid)
fi

REDIS_BIN=""
REDIS_CLI=""
REDIS_PORT=""
REDIS_DIR=""

# redis_args PORT DIR: set REDIS_ARGS to the arguments of a private
# redis-server listening on 127.0.0.1:PORT with DIR as its working folder.
# No persistence (--save '' --appendonly no): tests want a fast, throw-away
# store. Not daemonized so that the PID of the started process is the
# server's own. Also `redis-args PORT DIR` (for internal/testenv).
REDIS_ARGS=()
redis_args() {
	local port=$1 dir=$2
	REDIS_ARGS=(--port "$port" --bind 127.0.0.1 --save '' --appendonly no
		--dir "$dir" --logfile "$dir/redis.log" --daemonize no)
}

start_redis() {
	REDIS_DIR="$TMP/redis"
	mkdir -p "$REDIS_DIR"
	REDIS_PORT=$(pick_port)
	redis_args "$REDIS_PORT" "$REDIS_DIR"
	"${DETACH[@]}" "$REDIS_BIN" "${REDIS_ARGS[@]}" \
		</dev/null >"$REDIS_DIR/stdout.log" 2>&1 &
	REDIS_PID=$!
	# Tests may kill this server on purpose; disown keeps bash from printing
	# "Killed …" at a random point of their output. bash still reaps it.
	disown "$REDIS_PID"
}

redis_ready() {
	if [[ -n "$REDIS_CLI" ]]; then
		[[ "$("$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
	else
		# Plain RESP over /dev/tcp when redis-cli is absent.
		local reply
		reply=$(
			exec 2>/dev/null
			exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || exit 1
			printf 'PING\r\n' >&3
			read -r -t 2 line <&3 && echo "$line"
		) 2>/dev/null || return 1
		[[ "$reply" == "+PONG"* ]]
	fi
}

# ------------------------------------------------------------- clickhouse ---

CH_SERVER=""   # what TOLLGATE_TEST_CLICKHOUSE_SERVER points at
CH_CLIENT=()   # command prefix for the client, may be "clickhouse client"
CH_TCP_PORT=""
CH_HTTP_PORT=""
CH_DIR=""
CH_CONFIG=""
CH_DATA=""

resolve_clickhouse() {
	local bin
	if bin=$(find_bin clickhouse-server); then
		CH_SERVER=$bin
	elif bin=$(find_bin clickhouse); then
		# Upstream's multi-call binary: give tests a single executable that
		# takes the same arguments as Debian's clickhouse-server. exec keeps
		# the PID, so recorded PIDs stay those of the server itself.
		mkdir -p "$TMP/bin"
		printf '#!/bin/sh\nexec %q server "$@"\n' "$bin" >"$TMP/bin/clickhouse-server"
		chmod 755 "$TMP/bin/clickhouse-server"
		CH_SERVER="$TMP/bin/clickhouse-server"
	else
		die "clickhouse-server not found"
	fi
	if bin=$(find_bin clickhouse-client); then
		CH_CLIENT=("$bin")
	elif bin=$(find_bin clickhouse); then
		CH_CLIENT=("$bin" client)
	fi
}

# write_clickhouse_config DIR TCP_PORT HTTP_PORT: the folders, config.xml and
# users.xml of a private ClickHouse in DIR (data in DIR/data, logs in
# DIR/log). Also `clickhouse-config DIR TCP_PORT HTTP_PORT` (for
# internal/testenv).
write_clickhouse_config() {
	local dir=$1 tcp_port=$2 http_port=$3
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
	# Root element <yandex>: 18.16 predates <clickhouse>. 18.16 refuses to
	# start without mark_cache_size ("Not found: mark_cache_size"); the other
	# keys are spelled out so the server does not depend on defaults that
	# changed across versions. Only tcp_port and http_port are opened (no
	# interserver port), on 127.0.0.1 only. No query_log: less background
	# work and faster start/stop. A graceful stop waits for every open
	# connection: shutdown_wait_unfinished bounds the wait for running
	# queries, keep_alive_timeout for idle HTTP keep-alive connections, and
	# poll_interval=1 (profile) makes idle native connections notice the
	# shutdown within 1 s instead of 10 s (18.16's default): with
	# clickhouse-go's idle pool open, stop takes ~2 s instead of ~10 s.
	cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp_port</tcp_port>
    <http_port>$http_port</http_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <keep_alive_timeout>3</keep_alive_timeout>
    <mlock_executable>false</mlock_executable>
    <shutdown_wait_unfinished>3</shutdown_wait_unfinished>
</yandex>
EOF
	cat >"$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <log_queries>0</log_queries>
            <poll_interval>1</poll_interval>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::ffff:127.0.0.1</ip>
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
EOF
}

start_clickhouse() {
	CH_TCP_PORT=$(pick_port)
	CH_HTTP_PORT=$(pick_port)
	CH_DIR="$TMP/clickhouse"
	CH_DATA="$CH_DIR/data"
	CH_CONFIG="$CH_DIR/config.xml"
	write_clickhouse_config "$CH_DIR" "$CH_TCP_PORT" "$CH_HTTP_PORT"
	# Run from the data folder: some versions write files relative to cwd.
	(cd "$CH_DIR" && exec "${DETACH[@]}" "$CH_SERVER" --config-file="$CH_CONFIG") \
		</dev/null >"$CH_DIR/log/stdout.log" 2>&1 &
	CH_PID=$!
	disown "$CH_PID" # see start_redis
}

clickhouse_ready() {
	# HTTP /ping answers "Ok." once the server accepts queries; a raw
	# request over /dev/tcp avoids needing curl.
	local reply
	reply=$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/127.0.0.1/$CH_HTTP_PORT" || exit 1
		printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 2 cat <&3
	) 2>/dev/null || return 1
	[[ "$reply" == *"Ok."* ]]
}

# wait_ready NAME PID READY-FN LOG...: poll READY-FN until it succeeds, the
# process dies, or START_TIMEOUT passes. Returns 0 ready, 1 died, 2 timeout.
wait_ready() {
	local name=$1 pid=$2 fn=$3 deadline
	shift 3
	deadline=$(($(now_ms) + START_TIMEOUT * 1000))
	while ! "$fn"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name exited during start-up"
			return 1
		fi
		if (($(now_ms) > deadline)); then
			log "$name did not answer within ${START_TIMEOUT}s"
			return 2
		fi
		sleep 0.05
	done
	return 0
}

# bound_by_port_clash LOG...: true if the logs say a port was taken, the one
# start-up failure worth retrying with new ports.
bound_by_port_clash() {
	grep -qiE 'address already in use|Net Exception: Address' "$@" 2>/dev/null
}

start_servers() {
	REDIS_BIN=$(find_bin redis-server) || die "redis-server not found"
	REDIS_CLI=$(find_bin redis-cli) || REDIS_CLI=""
	resolve_clickhouse

	local t0 attempt rc
	t0=$(now_ms)
	for attempt in 1 2 3; do
		start_redis
		start_clickhouse
		rc=0
		wait_ready redis-server "$REDIS_PID" redis_ready || rc=$?
		if [[ $rc -eq 0 ]]; then
			wait_ready clickhouse-server "$CH_PID" clickhouse_ready || rc=$?
		fi
		if [[ $rc -eq 0 ]]; then
			break
		fi
		local logs=("$REDIS_DIR/redis.log" "$REDIS_DIR/stdout.log" "$CH_DIR/log/stdout.log"
			"$CH_DIR/log/clickhouse-server.err.log" "$CH_DIR/log/clickhouse-server.log")
		stop_pids 5 clickhouse $CH_PID
		stop_pids 5 redis-server $REDIS_PID
		if [[ $rc -eq 1 && $attempt -lt 3 ]] && bound_by_port_clash "${logs[@]}"; then
			log "port clash, retrying with other ports"
			rm -rf "$REDIS_DIR" "$CH_DIR"
			continue
		fi
		show_logs "${logs[@]}"
		die "servers failed to start"
	done

	local version="?"
	if [[ ${#CH_CLIENT[@]} -gt 0 ]]; then
		# Also proves the native port (the one Tollgate uses) answers.
		version=$("${CH_CLIENT[@]}" --host 127.0.0.1 --port "$CH_TCP_PORT" -q 'SELECT version()' 2>&1) || {
			show_logs "$CH_DIR/log/clickhouse-server.err.log"
			die "clickhouse native port $CH_TCP_PORT does not answer: $version"
		}
	fi
	log "redis $REDIS_PORT (pid $REDIS_PID), clickhouse $version tcp $CH_TCP_PORT http $CH_HTTP_PORT (pid $CH_PID); up in $(($(now_ms) - t0)) ms"
}

export_env() {
	export TOLLGATE_TEST_REQUIRE_SERVERS=1
	export TOLLGATE_TEST_TMPDIR="$TMP"

	export TOLLGATE_TEST_REDIS="redis://127.0.0.1:$REDIS_PORT"
	export TOLLGATE_TEST_REDIS_ADDR="127.0.0.1:$REDIS_PORT"
	export TOLLGATE_TEST_REDIS_SERVER="$REDIS_BIN"
	export TOLLGATE_TEST_REDIS_DIR="$REDIS_DIR"
	export TOLLGATE_TEST_REDIS_PID="$REDIS_PID"

	export TOLLGATE_TEST_CLICKHOUSE="clickhouse://127.0.0.1:$CH_TCP_PORT"
	export TOLLGATE_TEST_CLICKHOUSE_ADDR="127.0.0.1:$CH_TCP_PORT"
	export TOLLGATE_TEST_CLICKHOUSE_HTTP="http://127.0.0.1:$CH_HTTP_PORT"
	export TOLLGATE_TEST_CLICKHOUSE_SERVER="$CH_SERVER"
	export TOLLGATE_TEST_CLICKHOUSE_CLIENT="${CH_CLIENT[*]:-}"
	export TOLLGATE_TEST_CLICKHOUSE_CONFIG="$CH_CONFIG"
	export TOLLGATE_TEST_CLICKHOUSE_DATA="$CH_DATA"
	export TOLLGATE_TEST_CLICKHOUSE_PID="$CH_PID"

	local chromium
	if chromium=$(find_chromium); then
		export TOLLGATE_TEST_CHROMIUM="$chromium"
	fi
}

run_command() {
	[[ $# -gt 0 ]] || die "no command given (usage: $0 -- COMMAND...)"
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-testenv.XXXXXX")
	trap cleanup EXIT
	trap 'on_signal INT 130' INT
	trap 'on_signal TERM 143' TERM
	trap 'on_signal HUP 129' HUP

	start_servers
	export_env

	# The command runs in the background so that a SIGTERM sent to this
	# script interrupts `wait` at once (a foreground child would delay the
	# trap until it exits). A non-interactive bash starts background jobs
	# with SIGINT ignored and stdin on /dev/null; `env --default-signal`
	# (coreutils >= 8.31) and the explicit stdin redirect undo both so
	# Ctrl-C and interactive commands behave as usual.
	local rc=0
	if env --default-signal=INT true 2>/dev/null; then
		if { true <&0; } 2>/dev/null; then
			env --default-signal=INT,QUIT "$@" <&0 &
		else
			env --default-signal=INT,QUIT "$@" </dev/null &
		fi
		CHILD_PID=$!
		wait "$CHILD_PID" || rc=$?
	else
		"$@" || rc=$?
	fi
	CHILD_PID=""
	exit "$rc"
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
}

main() {
	case "${1:-}" in
	install)
		install_packages
		;;
	--)
		shift
		install_packages
		run_command "$@"
		;;
	run)
		shift
		[[ "${1:-}" == -- ]] && shift
		install_packages
		run_command "$@"
		;;
	clickhouse-config)
		[[ $# -eq 4 && "$3" =~ ^[0-9]+$ && "$4" =~ ^[0-9]+$ ]] ||
			die "usage: $0 clickhouse-config DIR TCP_PORT HTTP_PORT"
		write_clickhouse_config "$2" "$3" "$4"
		;;
	redis-args)
		[[ $# -eq 3 && "$2" =~ ^[0-9]+$ ]] || die "usage: $0 redis-args PORT DIR"
		redis_args "$2" "$3"
		printf '%s\0' "${REDIS_ARGS[@]}"
		;;
	-h | --help | help | "")
		usage
		[[ -n "${1:-}" ]]
		;;
	*)
		usage
		die "unknown subcommand: $1"
		;;
	esac
}

main "$@"
