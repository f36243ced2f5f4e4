#!/usr/bin/env bash
# Load benchmark for jobtoken (SPEC §9, issue 12): a CI fleet's mints, introspections and
# cross-project decisions over many distinct tokens, a mixed load, JWKS, the same on a large
# database, on SQLite and PostgreSQL; beside them the machine's ceilings (sign-only, a trivial
# HTTP responder) and, with BENCH_PEER=oidc-provider, a peer. wrk on the same machine. One
# command; see benches/README.md.
#
# Environment:
#   BENCH_SECONDS      measured duration of each run (default 15)
#   BENCH_WARMUP       warm-up duration before each run (default 3)
#   BENCH_CONNECTIONS  wrk connections (default 64)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_NO_BUILD=1   skip the cargo builds and use the existing binaries
#   BENCH_BIN          server binary (default target/release/jobtoken)
#   BENCH_KEEP=1       keep the temporary directory (database, logs, wrk output)
#   BENCH_DATABASE     sqlite (default) or postgres: postgres also starts a throwaway local
#                      PostgreSQL cluster and measures PostgreSQL with one replica (small and
#                      large) and (BENCH_REPLICAS > 1) with BENCH_REPLICAS replicas
#   BENCH_REPLICAS     jobtoken processes on the PostgreSQL database (default 2)
#   BENCH_PG_SOCKET=1  connect to PostgreSQL over its unix socket instead of TCP on 127.0.0.1
#   BENCH_LARGE=0      skip the large configurations (100,000 projects, 1,000,000 entries)
#   BENCH_PEER         oidc-provider: also measure panva's oidc-provider (benches/peer); none (default)
#   BENCH_PEER_WORKERS its processes (default: one per core, as jobtoken's workers)
#   BENCH_CHART=0      skip the chart (and the matplotlib venv)
#   BENCH_UPDATE_DOC   1: rewrite BENCHMARKS.md's results section and README's headline between
#                      their markers; 0: leave both alone. Default 1 only for the full published
#                      run (BENCH_DATABASE=postgres BENCH_PEER=oidc-provider, 15 s or longer)
#   BENCH_PROFILE=1    perf record the first replica during each measured run
set -euo pipefail

SECONDS_RUN=${BENCH_SECONDS:-15}
WARMUP=${BENCH_WARMUP:-3}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
PEER=${BENCH_PEER:-none}
ALG=ES256 # the server's default, which the script leaves in place

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
LUA="$BENCH_DIR/wrk/bench.lua"
RESULTS_DIR="$BENCH_DIR/results"
BIN=${BENCH_BIN:-$ROOT/target/release/jobtoken}
ADMIN_TOKEN="bench-admin-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')"
SCRIPT_START=$(date +%s)
# The command as the report shows it: the BENCH_* settings, then the script.
BENCH_CMDLINE="$(env | { grep -E '^BENCH_[A-Z_]+=' || true; } | { grep -vE '^BENCH_(CMDLINE|DIR)=' || true; } | sort | tr '\n' ' ')benches/run.sh"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
FAIL_MSG=""
die() { FAIL_MSG=$*; log "FAILED: $*"; exit 1; }

# phase NAME: records how long the phase that just ended took (since the previous call).
declare -a PHASES=()
PHASE_T=$SCRIPT_START
phase() {
    local now
    now=$(date +%s)
    PHASES+=("$1|$((now - PHASE_T))")
    log "phase done: $1 ($((now - PHASE_T)) s)"
    PHASE_T=$now
}

# ---------------------------------------------------------------- prerequisites
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
DATABASE=${BENCH_DATABASE:-sqlite}
REPLICAS=${BENCH_REPLICAS:-2}
[[ $DATABASE == sqlite || $DATABASE == postgres ]] || { echo "BENCH_DATABASE must be sqlite or postgres" >&2; exit 2; }
[[ $REPLICAS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_REPLICAS must be a positive integer" >&2; exit 2; }
[[ $PEER == none || $PEER == oidc-provider ]] || { echo "BENCH_PEER must be none or oidc-provider" >&2; exit 2; }
if [[ $DATABASE == postgres ]]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need_apt+=(postgresql)
    command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
fi
if [[ $PEER == oidc-provider ]]; then
    command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
    command -v npm >/dev/null 2>&1 || need_apt+=(npm)
fi
if [[ ${BENCH_CHART:-1} == 1 ]]; then
    python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
fi
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]} from apt"
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# shellcheck source=benches/server.sh
source "$BENCH_DIR/server.sh"
build_server
# The ceilings helper (benches/ceilings.rs), built with the release profile.
CEIL_BIN=$ROOT/target/release/ceilings
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    log "building the ceilings helper (cargo build --release --locked --bench ceilings)"
    exe=$(cd "$ROOT" && cargo build --release --locked --bench ceilings --message-format=json |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ceilings" and m.get("executable"):
        print(m["executable"])')
    [[ -x $exe ]] || die "cargo built no ceilings executable"
    cp "$exe" "$CEIL_BIN"
fi
[[ -x $CEIL_BIN ]] || die "no ceilings helper at $CEIL_BIN"
if [[ $PEER == oidc-provider ]]; then
    log "installing the peer (npm ci in benches/peer: oidc-provider $(sed -n 's/.*"oidc-provider": "\(.*\)".*/\1/p' "$BENCH_DIR/peer/package.json"))"
    (cd "$BENCH_DIR/peer" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed in benches/peer"
fi
VENV=$ROOT/target/bench-venv
if [[ ${BENCH_CHART:-1} == 1 ]]; then
    if ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
        log "installing matplotlib from PyPI into $VENV"
        python3 -m venv "$VENV" || die "python3 -m venv failed"
        "$VENV/bin/pip" install -q --disable-pip-version-check "matplotlib==3.9.4" || die "pip install matplotlib failed"
    fi
fi
phase "build and install"

# ---------------------------------------------------------------- lifecycle
TMP=$(mktemp -d "${TMPDIR:-/tmp}/jobtoken-bench.XXXXXX")
BENCH_TMP=$TMP # start_server runs each replica in TMP, set per configuration
SAMPLER_PID=""
declare -a SERVER_PIDS=() BASES=() SERVER_LOGS=()
PG_DIR="" PG_PORT="" PG_BIN="" PG_USER="" PG_HOST=127.0.0.1

show_server_log() {
    local f
    for f in "${SERVER_LOGS[@]}"; do
        if [[ -s $f ]]; then
            if grep -qE ' (WARN|ERROR) |panick|database is locked' "$f"; then
                log "warnings and errors in $f (last 20):"
                grep -E ' (WARN|ERROR) |panick|database is locked' "$f" | tail -n 20 >&2
            fi
            log "last 40 lines of $f:"
            tail -n 40 "$f" >&2
        else
            log "$f is empty"
        fi
    done
}

stop_sampler() {
    if [[ -n $SAMPLER_PID ]]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=""
    fi
}

# stop_servers: SIGTERM every replica (stop_server from server.sh); fails if any exits non-zero.
stop_servers() {
    local pid rc=0
    for pid in "${SERVER_PIDS[@]}"; do
        SERVER_PID=$pid
        stop_server || rc=$?
    done
    SERVER_PIDS=()
    return "$rc"
}

# pg_as CMD...: runs a PostgreSQL server program as the cluster's owner (root may not run it).
pg_as() {
    if [[ -n $PG_USER ]]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

stop_postgres() {
    [[ -n $PG_DIR && -f $PG_DIR/data/postmaster.pid ]] || return 0
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_sampler
    if [[ $rc -ne 0 ]]; then
        local pid
        for pid in "${SERVER_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || log "server $pid is no longer running"
        done
        show_server_log
        [[ -n $PG_DIR && -s $PG_DIR/server.log ]] && { log "PostgreSQL log (last 20):"; tail -n 20 "$PG_DIR/server.log" >&2; }
    fi
    stop_servers || true
    stop_postgres
    [[ -n $FAIL_MSG ]] && log "FAILED: $FAIL_MSG"
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        log "kept $BENCH_TMP${PG_DIR:+ and $PG_DIR}"
    else
        rm -rf "$BENCH_TMP"
        [[ -n $PG_DIR ]] && rm -rf "$PG_DIR"
    fi
    exit "$rc"
}
trap_cleanup

# ---------------------------------------------------------------- PostgreSQL cluster
# start_postgres: initdb + pg_ctl start in its own temporary directory on a free loopback port,
# as the unprivileged `postgres` user when running as root. Durable: fsync, synchronous_commit and
# full_page_writes stay on; the rest is sized so that no checkpoint runs during the measurement.
start_postgres() {
    PG_BIN=$(pg_config --bindir 2>/dev/null || true)
    if [[ ! -x $PG_BIN/initdb ]]; then
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    fi
    [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] || die "PostgreSQL server binaries (initdb, pg_ctl) not found"
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/jobtoken-bench-pg.XXXXXX")
    if [[ $(id -u) -eq 0 ]]; then
        PG_USER=postgres
        id -u "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
        chown "$PG_USER:" "$PG_DIR"
    fi
    chmod 700 "$PG_DIR"
    log "initdb in $PG_DIR (${PG_USER:-$(id -un)})"
    (cd "$PG_DIR" && LC_ALL=C pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U jobtoken -A trust -E UTF8 --no-locale \
        >"$PG_DIR/initdb.log" 2>&1) || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' | pg_as tee "$PG_DIR/data/pg_hba.conf" >/dev/null
    local attempt
    for attempt in 1 2 3 4 5; do
        PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        pg_as tee -a "$PG_DIR/data/postgresql.conf" >/dev/null <<CONF

# jobtoken benchmark (the last setting wins)
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
max_connections = 100
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
shared_buffers = 256MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 30min
wal_compression = on
autovacuum_vacuum_cost_delay = 0
CONF
        if (cd "$PG_DIR" && pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null 2>&1); then
            break
        fi
        ((attempt < 5)) || { tail -n 20 "$PG_DIR/server.log" >&2; die "pg_ctl start failed"; }
    done
    [[ ${BENCH_PG_SOCKET:-0} == 1 ]] && PG_HOST=$PG_DIR
    log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT" \
        "($([[ $PG_HOST == 127.0.0.1 ]] && echo TCP || echo "unix socket in $PG_DIR"))"
}

# psql_c DATABASE SQL: one query through psql, unaligned, tuples only.
psql_c() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U jobtoken -d "$1" -tA -c "$2"; }

# pg_url DATABASE: what JOBTOKEN_DATABASE names for it.
pg_url() {
    if [[ $PG_HOST == 127.0.0.1 ]]; then
        echo "postgres://jobtoken@127.0.0.1:$PG_PORT/$1"
    else
        echo "postgres://jobtoken@$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$PG_HOST"):$PG_PORT/$1"
    fi
}

# pg_cpu_ticks: user + system CPU of the postmaster and every process it started, in clock ticks.
pg_cpu_ticks() {
    [[ -n $PG_DIR ]] || { echo 0; return; }
    local pm
    pm=$(head -n1 "$PG_DIR/data/postmaster.pid")
    # shellcheck disable=SC2046
    cat $(printf '/proc/%s/stat ' "$pm" $(pgrep -P "$pm")) 2>/dev/null | awk '{s += $14 + $15} END {print s + 0}'
}

# ---------------------------------------------------------------- helpers
# api METHOD PATH [JSON]: admin call on the first replica; prints the body, fails on status >= 300.
api() {
    local method=$1 path=$2 body=${3:-}
    local out="$TMP/api.body" code
    local args=(-sS -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $ADMIN_TOKEN")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    code=$(curl "${args[@]}" "$BASE$path") || die "$method $path: curl failed"
    if ((code >= 300)); then
        die "$method $path -> $code $(cat "$out")"
    fi
    cat "$out"
}

# json_get FIELD.PATH: reads JSON on stdin, prints one field (dots and integer indexes).
json_get() {
    python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if not isinstance(v, bool) else str(v).lower())' "$1"
}

basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 | tr -d '\n')"; }

# kv FILE KEY: value of KEY in a key=value file written by bench.lua's done().
kv() { sed -n "s/^$2=//p" "$1" | head -n1; }

# machine_ticks: "processes irq+softirq steal idle+iowait" clock ticks of all CPUs so far.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4, $7 + $8, $9, $5 + $6; exit}' /proc/stat; }

# server_cpu_ticks: user + system CPU time of every replica so far, in clock ticks.
server_cpu_ticks() {
    # shellcheck disable=SC2046
    cat $(printf '/proc/%s/stat ' "${SERVER_PIDS[@]}") | awk '{s += $14 + $15} END {print s + 0}'
}


# ---------------------------------------------------------------- results
declare -A RPS=() P50=() P99=() CPU_NOTE=() RSS=() LABEL=()
declare -a CONFIGS=() CONFIG_NOTES=()
CUR="" # the configuration being measured
COUNT_MINTS=0 # 1 while measuring jobtoken: responses with an access token count as mints
declare -A OP_LABEL=(
    [mint]="fleet mint"
    [introspect]="introspection"
    [decide]="decision"
    [mixed]="mixed 70/20/10"
    [jwks]="JWKS"
    [http]="trivial HTTP responder"
    [peer]="oidc-provider client_credentials"
)

# run OP PATH [VAR=VALUE...]: warm-up + measured run of bench.lua (configured by the VAR=VALUEs),
# one wrk per replica with an equal share of the connections and threads; a BENCH_JOBS range is
# split between the replicas. Fails on any non-2xx, socket error or (with BENCH_EXPECT) an
# unexpected answer. Fills RPS, P50, P99 and CPU_NOTE for CUR,OP (req/s summed, the worst
# replica's p50 and p99) and adds the counted mints to MINT_OK.
run() {
    local op=$1 path=$2
    shift 2
    local -a vars=("$@")
    local n=${#BASES[@]} phase i out
    local conns=$(((CONNS + n - 1) / n)) threads=$(((THREADS + n - 1) / n))
    local cpu0 sys0 pg0 cpu1 sys1 pg1
    for phase in warmup measure; do
        local dur=$SECONDS_RUN
        [[ $phase == warmup ]] && dur=$WARMUP
        out="$TMP/$CUR.$op.$phase"
        log "$CUR $op: $phase ${dur}s, $CONNS connections, $THREADS threads, $n server(s)"
        local perf_pid=""
        cpu0=$(server_cpu_ticks)
        pg0=$(pg_cpu_ticks)
        sys0=$(machine_ticks)
        if [[ $phase == measure && ${BENCH_PROFILE:-0} == 1 ]]; then
            perf record -q -F 499 -p "${SERVER_PIDS[0]}" -o "$out.perf.data" -- sleep "$dur" >/dev/null 2>&1 &
            perf_pid=$!
        fi
        local -a pids=()
        for ((i = 0; i < n; i++)); do
            local -a env=("${vars[@]}")
            local k
            for k in "${!env[@]}"; do
                # warm-up and measured run may name different job ranges: BENCH_JOBS_WARMUP
                if [[ ${env[$k]} == BENCH_JOBS_WARMUP=* ]]; then
                    [[ $phase == warmup ]] && env[k]="BENCH_JOBS=${env[$k]#BENCH_JOBS_WARMUP=}" || unset 'env[k]'
                fi
            done
            for k in "${!env[@]}"; do
                if [[ ${env[$k]} =~ ^BENCH_JOBS=([0-9]+):([0-9]+)$ ]] && ((n > 1)); then
                    local a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]}
                    local len=$((b - a + 1))
                    env[k]="BENCH_JOBS=$((a + len * i / n)):$((a + len * (i + 1) / n - 1))"
                fi
            done
            (
                TIMEFORMAT='%U %S'
                rc=0
                { time env "${env[@]}" BENCH_WRK_THREADS="$threads" BENCH_OUT="$out.$i.kv" \
                    wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 10s --latency -s "$LUA" \
                    "${BASES[$i]}$path" >"$out.$i.txt" 2>&1 || rc=$?; } 2>"$out.$i.time"
                exit "$rc"
            ) &
            pids+=($!)
        done
        for ((i = 0; i < n; i++)); do
            wait "${pids[$i]}" || { cat "$out.$i.txt" >&2; die "wrk exited with status $? ($CUR $op $phase, server $i)"; }
        done
        cpu1=$(server_cpu_ticks)
        pg1=$(pg_cpu_ticks)
        sys1=$(machine_ticks)
        if [[ -n $perf_pid ]]; then
            wait "$perf_pid" || true
            perf report -i "$out.perf.data" --sort dso,symbol --stdio 2>/dev/null |
                grep '%' | grep -v '^#' | tr -s ' ' | sed 's/ - -$//' | head -n 40 \
                >"$RESULTS_DIR/profile-$CUR-$op.txt" || true
        fi
        for ((i = 0; i < n; i++)); do
            [[ -s $out.$i.kv ]] || { cat "$out.$i.txt" >&2; die "wrk wrote no summary ($CUR $op $phase, server $i)"; }
            kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || { cat "$out.$i.txt" >&2; die "server $i died during $CUR $op $phase"; }
            local non2xx sock bad
            non2xx=$(kv "$out.$i.kv" non2xx)
            sock=$(($(kv "$out.$i.kv" sock_connect) + $(kv "$out.$i.kv" sock_read) + $(kv "$out.$i.kv" sock_write) + $(kv "$out.$i.kv" sock_timeout)))
            bad=$(kv "$out.$i.kv" bad)
            ((bad == 0)) || { cat "$out.$i.txt" >&2; die "$CUR $op $phase: $bad unexpected responses, first: $(kv "$out.$i.kv" first_bad)"; }
            if ((non2xx != 0 || sock != 0)); then
                cat "$out.$i.txt" >&2
                die "$CUR $op $phase: $non2xx non-2xx responses, $sock socket errors (server $i)"
            fi
            if ((COUNT_MINTS)); then
                local minted
                minted=$(kv "$out.$i.kv" minted)
                MINT_OK=$((MINT_OK + minted))
                ((minted == 0)) || MINT_SLACK=$((MINT_SLACK + conns))
            fi
        done
    done
    local rps=0 p50=0 p99=0 us=0 wrk_time=""
    for ((i = 0; i < n; i++)); do
        rps=$(awk -v a="$rps" -v b="$(kv "$out.$i.kv" rps)" 'BEGIN {print a + b}')
        p50=$(awk -v a="$p50" -v b="$(kv "$out.$i.kv" p50_us)" 'BEGIN {print (b > a) ? b : a}')
        p99=$(awk -v a="$p99" -v b="$(kv "$out.$i.kv" p99_us)" 'BEGIN {print (b > a) ? b : a}')
        us=$(awk -v a="$us" -v b="$(kv "$out.$i.kv" duration_us)" 'BEGIN {print (b > a) ? b : a}')
        wrk_time+=" $(cat "$out.$i.time")"
    done
    RPS[$CUR,$op]=$(printf '%.0f' "$rps")
    P50[$CUR,$op]=$p50
    P99[$CUR,$op]=$p99
    log "$CUR $op: $(printf '%.0f' "$rps") req/s, p50 $p50 µs, p99 $p99 µs"
    CPU_NOTE[$CUR,$op]=$(awk -v t="$((cpu1 - cpu0))" -v pg="$((pg1 - pg0))" -v hz="$(getconf CLK_TCK)" -v us="$us" \
        -v w="$wrk_time" -v m0="$sys0" -v m1="$sys1" -v n="$(nproc)" -v haspg="${PG_DIR:+1}" 'BEGIN {
            k = split(w, a, " "); split(m0, b, " "); split(m1, c, " "); s = us / 1e6
            srv = 100 * t / hz / s; db = 100 * pg / hz / s; gen = 0; for (i = 1; i <= k; i++) gen += a[i]; gen = 100 * gen / s
            tot = 0; for (i = 1; i <= 4; i++) { d[i] = c[i] - b[i]; tot += d[i] }
            for (i = 1; i <= 4; i++) d[i] = 100 * n * d[i] / tot
            other = d[1] - srv - db - gen; if (other < 0) other = 0
            printf "server %.0f%%, ", srv
            if (haspg) printf "PostgreSQL %.0f%%, ", db
            printf "wrk %.0f%%, interrupts (loopback softirq) %.0f%%, steal %.0f%%, other processes %.0f%%, idle %.0f%%",
                gen, d[2], d[3], other, d[4]}')
}

# sample_memory: the largest sum of the servers' VmRSS, sampled every 0.5 s, into $RSS_FILE.
sample_memory() {
    RSS_FILE="$TMP/$CUR.rss.max"
    echo 0 >"$RSS_FILE"
    (
        max=0
        while kill -0 "${SERVER_PIDS[0]}" 2>/dev/null; do
            # shellcheck disable=SC2046
            kb=$(cat $(printf '/proc/%s/status ' "${SERVER_PIDS[@]}") 2>/dev/null | awk '/^VmRSS:/ {s += $2} END {print s + 0}')
            if ((kb > max)); then
                max=$kb
                echo "$max" >"$RSS_FILE"
            fi
            sleep 0.5
        done
    ) &
    SAMPLER_PID=$!
}

# wait_listening PID FILE: the `listening on http://…` line a helper prints; sets BASE.
wait_listening() {
    BASE=""
    for _ in $(seq 1 300); do
        if line=$(grep -m1 'listening on http://' "$2" 2>/dev/null); then
            BASE=$(grep -o 'http://127.0.0.1:[0-9]*' <<<"$line")
            return 0
        fi
        kill -0 "$1" 2>/dev/null || { cat "$2" >&2; die "$2: exited before listening"; }
        sleep 0.1
    done
    die "$2: no listening line within 30 s"
}

# ---------------------------------------------------------------- ceilings and the peer
SIGN_RPS="" SIGN_LINE=""
measure_ceilings() {
    log "==== ceilings"
    SIGN_LINE=$("$CEIL_BIN" sign "$ALG" "$SECONDS_RUN") || die "ceilings sign failed"
    SIGN_RPS=$(sed -n 's/.*signs_per_s=\([0-9]*\).*/\1/p' <<<"$SIGN_LINE")
    log "sign-only ceiling: $SIGN_LINE"
    CUR=ceil
    LABEL[ceil]="ceilings"
    "$CEIL_BIN" http >"$TMP/ceil.out" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS=("$SERVER_PID")
    wait_listening "$SERVER_PID" "$TMP/ceil.out"
    BASES=("$BASE")
    sample_memory
    run http / BENCH_EXPECT='"active":true'
    stop_sampler
    RSS[ceil]=$(cat "$RSS_FILE")
    stop_servers || die "the trivial responder exited with status $?"
    BASES=()
    phase "ceilings (sign-only, trivial HTTP)"
}

measure_peer() {
    log "==== peer: oidc-provider"
    CUR=peer
    LABEL[peer]="oidc-provider $(node -p "require(\"$BENCH_DIR/peer/node_modules/oidc-provider/package.json\").version" 2>/dev/null), Node $(node --version)"
    (cd "$BENCH_DIR/peer" && PEER_WORKERS=${BENCH_PEER_WORKERS:-$(nproc)} NODE_ENV=production exec node server.mjs) >"$TMP/peer.out" 2>"$TMP/peer.log" &
    SERVER_PID=$!
    wait_listening "$SERVER_PID" "$TMP/peer.out"
    BASES=("$BASE")
    # shellcheck disable=SC2207
    SERVER_PIDS=("$SERVER_PID" $(sed -n 's/.*pids \([0-9 ]*\)).*/\1/p' "$TMP/peer.out"))
    local auth body
    auth=$(basic bench-client bench-client-secret-0123456789abcdef)
    body="grant_type=client_credentials&resource=https%3A%2F%2Fapi.bench.example&scope=api%3Aread"
    local code
    code=$(curl -sS -o "$TMP/peer.json" -w '%{http_code}' -H "Authorization: $auth" --data-binary "$body" "$BASE/token")
    [[ $code == 200 ]] || die "oidc-provider token -> $code $(cat "$TMP/peer.json")"
    [[ $(json_get access_token <"$TMP/peer.json" | cut -d. -f1 | base64 -d 2>/dev/null) == *'"ES256"'* ]] ||
        die "oidc-provider did not issue an ES256 JWT: $(cat "$TMP/peer.json")"
    sample_memory
    run peer /token BENCH_METHOD=POST BENCH_BODY="$body" BENCH_AUTH="$auth" BENCH_EXPECT='"access_token"'
    stop_sampler
    RSS[peer]=$(cat "$RSS_FILE")
    SERVER_PIDS=("$SERVER_PID") # the primary stops its workers
    stop_servers || die "oidc-provider exited with status $?"
    BASES=()
    phase "peer (oidc-provider)"
}

# ---------------------------------------------------------------- one jobtoken configuration
FLEET_JOBS="1:10000" WARMUP_JOBS="10001:11000"

# bulk_load BACKEND DIR DBNAME LARGE: `jobtoken migrate`, then benches/seed.py into the schema.
bulk_load() {
    local backend=$1 dir=$2 dbname=$3 large=$4
    local -a flag=()
    ((large)) && flag=(--large)
    JOBTOKEN_DATABASE=$SERVER_DATABASE "$BIN" migrate >"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; die "jobtoken migrate failed"; }
    if [[ $backend == postgres ]]; then
        python3 "$BENCH_DIR/seed.py" postgres "${flag[@]}" |
            psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U jobtoken -d "$dbname" -f - >"$dir/seed.log" 2>&1 ||
            { tail -n 20 "$dir/seed.log" >&2; die "bulk load into PostgreSQL failed"; }
    else
        python3 "$BENCH_DIR/seed.py" sqlite "$SERVER_DATABASE" "${flag[@]}" || die "bulk load into SQLite failed"
    fi
}

# bench_config NAME LABEL BACKEND REPLICAS LARGE: a fresh database with the bulk-loaded fleet,
# REPLICAS servers on it, the runs split across them, and the durability check.
bench_config() {
    local cfg=$1 label=$2 backend=$3 replicas=$4 large=$5
    local dir="$TMP/$cfg"
    mkdir -p "$dir/db"
    CONFIGS+=("$cfg")
    LABEL[$cfg]=$label
    CUR=$cfg
    log "==== $label"
    SERVER_ENV=()
    local dbname=""
    if [[ $backend == postgres ]]; then
        dbname="bench_$cfg"
        psql_c postgres "CREATE DATABASE $dbname" >/dev/null || die "CREATE DATABASE $dbname failed"
        SERVER_DATABASE=$(pg_url "$dbname")
        SERVER_ENV=(
            "JOBTOKEN_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)"
            "JOBTOKEN_ISSUER=https://jobtoken.bench.example"
        )
    else
        SERVER_DATABASE="$dir/db/jobtoken.db"
    fi
    bulk_load "$backend" "$dir" "$dbname" "$large"
    phase "$cfg: migrate and bulk load"
    local i
    for ((i = 0; i < replicas; i++)); do
        SERVER_OUT="$dir/server$i.out"
        SERVER_LOG="$dir/server$i.log"
        SERVER_LOGS+=("$SERVER_LOG")
        # Replicas start one after the other: the first creates the signing keys.
        TMP=$dir
        start_server
        TMP=$BENCH_TMP
        SERVER_PIDS+=("$SERVER_PID")
        BASES+=("$BASE")
    done
    BASE=${BASES[0]}
    COUNT_MINTS=1
    MINT_OK=0 MINT_SLACK=0
    seed_clients
    sample_memory

    # Fleet mint: the warm-up starts the 1,000 warm-up jobs, the measured run's first 10,000
    # mints start the fleet's jobs (pending -> running, the write path), the rest re-mint.
    run mint /oauth/token BENCH_MODE=mint BENCH_JOBS_WARMUP="$WARMUP_JOBS" BENCH_JOBS="$FLEET_JOBS" \
        BENCH_AUTH="$RUNNER_AUTH" BENCH_EXPECT='"access_token"'
    local pending
    pending=$(count_sql "$backend" "$dbname" "SELECT count(*) FROM jobs WHERE status = 'pending' AND id <= ${FLEET_JOBS#*:}")
    FLEET_STARTED[$cfg]=$((10000 - pending))
    log "$cfg: fleet jobs started by the measured mint run: ${FLEET_STARTED[$cfg]} of 10000"
    log "minting one token per fleet job for the introspection and decision runs"
    local minted
    minted=$(python3 "$BENCH_DIR/tokens.py" "$BASE" "$RUNNER_AUTH" 1 10000 "$dir") || die "tokens.py failed"
    MINT_OK=$((MINT_OK + minted))
    check_bodies "$dir"
    run introspect /oauth/introspect BENCH_MODE=bodies BENCH_BODIES="$dir/introspect.bodies" \
        BENCH_AUTH="$RS_AUTH" BENCH_EXPECT='"active":true'
    run decide /api/v1/job_token/authorize BENCH_MODE=bodies BENCH_BODIES="$dir/decide.bodies" \
        BENCH_TYPE=application/json BENCH_AUTH="$RS_AUTH" BENCH_EXPECT='"allowed":true'
    if ((!large)); then
        run mixed / BENCH_MODE=mixed BENCH_BODIES="$dir/introspect.bodies" BENCH_BODIES2="$dir/decide.bodies" \
            BENCH_JOBS="$FLEET_JOBS" BENCH_AUTH="$RS_AUTH" BENCH_AUTH_MINT="$RUNNER_AUTH" BENCH_EXPECT=mixed
        run jwks /.well-known/jwks.json BENCH_EXPECT='"keys"'
    fi
    COUNT_MINTS=0
    stop_sampler
    RSS[$cfg]=$(cat "$RSS_FILE")
    local issued=0 n b
    for b in "${BASES[@]}"; do
        n=$(curl -sS "$b/metrics" | awk '$1 == "jobtoken_tokens_issued_total" {print $2}')
        [[ -n $n ]] || { issued=unknown; break; }
        issued=$((issued + n))
    done

    # Durability: every answered mint must already be committed while the servers still run,
    # not merely flushed at shutdown; read by another process (python sqlite3 or psql).
    local rows_live rows_db f
    rows_live=$(count_sql "$backend" "$dbname" "SELECT count(*) FROM issued_tokens")
    ((rows_live >= MINT_OK)) || die "while running: $rows_live issued_tokens rows for $MINT_OK successful mints"
    log "stopping the server(s) (SIGTERM)"
    stop_servers || die "a server exited with status $? after SIGTERM"
    for f in "${SERVER_LOGS[@]}"; do
        if grep -E ' (WARN|ERROR) |panick|database is locked' "$f" | tail -n 20 >&2; then
            die "$f has warnings or errors (above)"
        fi
    done
    rows_db=$(count_sql "$backend" "$dbname" "SELECT count(*) FROM issued_tokens")
    ((rows_db == rows_live)) || die "issued_tokens had $rows_live rows before shutdown and $rows_db after"
    # wrk stops counting at the deadline while up to one request per connection is still in
    # flight; those are minted and recorded but never counted. So: every success has a row, and
    # at most one row per connection per run that minted lacks a counted response.
    log "issued_tokens rows: $rows_db; counted mint responses: $MINT_OK; server counter(s): $issued"
    ((rows_db >= MINT_OK)) || die "only $rows_db issued_tokens rows for $MINT_OK successful mints: tokens were not recorded"
    ((rows_db - MINT_OK <= MINT_SLACK)) || die "$rows_db rows but only $MINT_OK successful mints (more than $MINT_SLACK in flight?)"
    if [[ $issued != unknown ]]; then
        ((rows_db == issued)) || die "issued_tokens has $rows_db rows but the server(s) issued $issued tokens"
    fi
    local notes="- **$label**: issued_tokens rows (same before and after shutdown, counted by"
    notes+=" $([[ $backend == postgres ]] && echo psql || echo 'python sqlite3')): $rows_db; counted mint responses"
    notes+=" (warm-up, runs and tokens.py): $MINT_OK; jobtoken_tokens_issued_total: $issued;"
    notes+=" fleet jobs started by the measured mint run: ${FLEET_STARTED[$cfg]} of 10,000"
    notes+=$'\n'"  - CPU during each measured run ($(nproc) cores = $(($(nproc) * 100))%):"
    local op
    for op in mint introspect decide mixed jwks; do
        [[ -n ${CPU_NOTE[$cfg,$op]:-} ]] && notes+=$'\n'"    - ${OP_LABEL[$op]}: ${CPU_NOTE[$cfg,$op]}"
    done
    CONFIG_NOTES+=("$notes")
    BASES=()
    SERVER_LOGS=()
    phase "$cfg: runs and checks"
}
declare -A FLEET_STARTED=()

# seed_clients: the fleet's instance runner and the resource server, through the admin API; the
# first mint of a warm-up job on every replica.
seed_clients() {
    local runner_json rs_json code b
    runner_json=$(api POST /api/v1/runners '{"runner_type":"instance","maximum_timeout":3600,"description":"fleet"}')
    RUNNER_AUTH=$(basic "$(json_get client_id <<<"$runner_json")" "$(json_get client_secret <<<"$runner_json")")
    rs_json=$(api POST /api/v1/resource_servers '{"name":"bench-registry"}')
    RS_AUTH=$(basic "$(json_get client_id <<<"$rs_json")" "$(json_get client_secret <<<"$rs_json")")
    for b in "${BASES[@]}"; do
        code=$(curl -sS -o "$TMP/mint.json" -w '%{http_code}' -H "Authorization: $RUNNER_AUTH" \
            --data-binary "grant_type=client_credentials&job_id=${WARMUP_JOBS%%:*}" "$b/oauth/token")
        [[ $code == 200 ]] || die "first mint on $b -> $code $(cat "$TMP/mint.json")"
        MINT_OK=$((MINT_OK + 1))
        code=$(curl -sS -o "$TMP/jwks.json" -w '%{http_code}' "$b/.well-known/jwks.json")
        [[ $code == 200 ]] || die "jwks on $b -> $code"
    done
    log "job ${WARMUP_JOBS%%:*} is $(api GET "/api/v1/jobs/${WARMUP_JOBS%%:*}" | json_get status); scope: $(json_get scope <"$TMP/mint.json")"
}

# check_bodies DIR: the first introspection and decision of the runs succeed on every replica.
check_bodies() {
    local b code
    for b in "${BASES[@]}"; do
        code=$(curl -sS -o "$TMP/introspect.json" -w '%{http_code}' -H "Authorization: $RS_AUTH" \
            --data-binary "$(head -n1 "$1/introspect.bodies")" "$b/oauth/introspect")
        [[ $code == 200 && $(json_get active <"$TMP/introspect.json") == true ]] || die "introspection on $b -> $code $(cat "$TMP/introspect.json")"
        code=$(curl -sS -o "$TMP/decide.json" -w '%{http_code}' -H "Authorization: $RS_AUTH" \
            -H 'Content-Type: application/json' --data-binary "$(head -n1 "$1/decide.bodies")" "$b/api/v1/job_token/authorize")
        [[ $code == 200 && $(json_get allowed <"$TMP/decide.json") == true ]] || die "decision on $b -> $code $(cat "$TMP/decide.json")"
    done
    log "decision: $(cat "$TMP/decide.json")"
}

# count_sql BACKEND DBNAME SQL: one count as another process sees it (committed rows only).
count_sql() {
    if [[ $1 == postgres ]]; then
        psql_c "$2" "$3" || die "psql failed"
        return
    fi
    python3 - "$SERVER_DATABASE" "$3" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=30)
print(con.execute(sys.argv[2]).fetchone()[0])
PY
}

# ---------------------------------------------------------------- the runs
mkdir -p "$RESULTS_DIR"
measure_ceilings
[[ $PEER == oidc-provider ]] && measure_peer
LARGE=${BENCH_LARGE:-1}
bench_config sqlite "SQLite" sqlite 1 0
((LARGE)) && bench_config sqlite_large "SQLite, large" sqlite 1 1
if [[ $DATABASE == postgres ]]; then
    start_postgres
    phase "PostgreSQL cluster start"
    bench_config pg1 "PostgreSQL ×1" postgres 1 0
    ((LARGE)) && bench_config pg1_large "PostgreSQL ×1, large" postgres 1 1
    ((REPLICAS > 1)) && bench_config "pg$REPLICAS" "PostgreSQL ×$REPLICAS" postgres "$REPLICAS" 0
fi

# ---------------------------------------------------------------- report
source "$BENCH_DIR/report.sh"
write_report
# Only the full published run rewrites the docs by default: a quick or partial run must not
# replace the published figures.
UPDATE_DOC_DEFAULT=0
[[ $DATABASE == postgres && $PEER == oidc-provider && $SECONDS_RUN -ge 15 ]] && UPDATE_DOC_DEFAULT=1
if [[ ${BENCH_UPDATE_DOC:-$UPDATE_DOC_DEFAULT} == 1 && -f $ROOT/BENCHMARKS.md ]]; then
    # The results section of BENCHMARKS.md, between its markers: the report without its title,
    # headings one level down.
    python3 - "$ROOT/BENCHMARKS.md" "$RESULTS_DIR/latest.md" <<'PY' || die "could not update BENCHMARKS.md"
import re, sys
doc, report = open(sys.argv[1]).read(), open(sys.argv[2]).read()
body = re.sub(r"^# .*\n+", "", report, count=1)
body = re.sub(r"^## ", "### ", body, flags=re.M)
begin = re.search(r"<!-- results:begin[^>]*-->\n", doc)
end = doc.find("<!-- results:end -->")
if not begin or end < begin.end():
    sys.exit("BENCHMARKS.md has no results markers")
open(sys.argv[1], "w").write(doc[: begin.end()] + "\n" + body.strip() + "\n\n" + doc[end:])
PY
    log "updated the results section of BENCHMARKS.md"
    # README "Performance": the headline between its markers.
    python3 - "$ROOT/README.md" "$RESULTS_DIR/headline.md" <<'PY' || die "could not update README.md"
import sys
doc, line = open(sys.argv[1]).read(), open(sys.argv[2]).read().strip()
b, e = "<!-- bench-headline:begin -->", "<!-- bench-headline:end -->"
i, j = doc.find(b), doc.find(e)
if 0 <= i < j:
    open(sys.argv[1], "w").write(doc[: i + len(b)] + "\n" + line + "\n" + doc[j:])
PY
fi
if [[ ${BENCH_CHART:-1} == 1 ]]; then
    "$VENV/bin/python" "$BENCH_DIR/chart.py" "$RESULTS_DIR/latest.tsv" "$RESULTS_DIR/chart.png" || die "chart.py failed"
    log "wrote $RESULTS_DIR/chart.png"
fi
echo
cat "$RESULTS_DIR/latest.md"
