#!/usr/bin/env bash
# Load benchmark for jobtoken (SPEC §9): mint, introspection, cross-project decisions and JWKS
# through HTTP, driven by wrk
# on the same machine. See benches/README.md.
#
# Environment:
#   BENCH_SECONDS      measured duration of each run (default 15)
#   BENCH_WARMUP       warm-up duration before each run (default 3)
#   BENCH_CONNECTIONS  wrk connections (default 64)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_NO_BUILD=1   skip `cargo build --release --locked` and use the existing binary
#   BENCH_BIN          server binary (default target/release/jobtoken)
#   BENCH_KEEP=1       keep the temporary directory (database, logs, wrk output)
#   BENCH_DATABASE     sqlite (default) or postgres: postgres also starts a throwaway local
#                      PostgreSQL cluster and measures SQLite, PostgreSQL with one replica and
#                      (BENCH_REPLICAS > 1) with BENCH_REPLICAS replicas, side by side
#   BENCH_REPLICAS     jobtoken processes on the PostgreSQL database (default 2)
#   BENCH_PG_SOCKET=1  connect to PostgreSQL over its unix socket instead of TCP on 127.0.0.1
#   BENCH_PROFILE=1    perf record the first replica during each measured run
set -euo pipefail

SECONDS_RUN=${BENCH_SECONDS:-15}
WARMUP=${BENCH_WARMUP:-3}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
LUA="$BENCH_DIR/wrk/bench.lua"
RESULTS_DIR="$BENCH_DIR/results"
BIN=${BENCH_BIN:-$ROOT/target/release/jobtoken}
ADMIN_TOKEN="bench-admin-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')"
SCRIPT_START=$(date +%s)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
FAIL_MSG=""
die() { FAIL_MSG=$*; log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- prerequisites
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
DATABASE=${BENCH_DATABASE:-sqlite}
REPLICAS=${BENCH_REPLICAS:-2}
[[ $DATABASE == sqlite || $DATABASE == postgres ]] || { echo "BENCH_DATABASE must be sqlite or postgres" >&2; exit 2; }
[[ $REPLICAS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_REPLICAS must be a positive integer" >&2; exit 2; }
if [[ $DATABASE == postgres ]]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need_apt+=(postgresql)
    command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
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

# ---------------------------------------------------------------- one configuration
declare -a OPS=(mint introspect decide jwks)
declare -A OP_LABEL=(
    [mint]="mint (\`POST /oauth/token\`)"
    [introspect]="introspect (\`POST /oauth/introspect\`)"
    [decide]="decision (\`POST /api/v1/job_token/authorize\`)"
    [jwks]="JWKS (\`GET /.well-known/jwks.json\`)"
)
declare -A CELL=()          # CELL[config,op] = "req/s | p50 | p99"
declare -a CONFIGS=() CONFIG_NOTES=()

# bench_config NAME LABEL BACKEND REPLICAS: a fresh database, REPLICAS servers on it, seeding,
# the four load runs split across the replicas, and the durability check; fills CELL and
# CONFIG_NOTES.
bench_config() {
    local cfg=$1 label=$2 backend=$3 replicas=$4
    local dir="$TMP/$cfg"
    mkdir -p "$dir"
    CONFIGS+=("$cfg|$label")
    log "==== $label"
    SERVER_ENV=()
    SERVER_DATABASE=""
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
    seed
    sample_memory

    local op
    run mint /oauth/token POST "$MINT_BODY" "$RUNNER_AUTH" 1
    run introspect /oauth/introspect POST "token=$TOKEN" "$RS_AUTH" 0
    run decide /api/v1/job_token/authorize POST "$DECIDE_BODY" "$RS_AUTH" 0 application/json
    run jwks /.well-known/jwks.json GET "" "" 0
    stop_sampler
    local rss_max_kb issued=0 n b
    rss_max_kb=$(cat "$RSS_FILE")
    for b in "${BASES[@]}"; do
        n=$(curl -sS "$b/metrics" | awk '$1 == "jobtoken_tokens_issued_total" {print $2}')
        [[ -n $n ]] || { issued=unknown; break; }
        issued=$((issued + n))
    done

    # Durability: every answered mint must already be committed while the servers still run,
    # not merely flushed at shutdown; read by another process (python sqlite3 or psql).
    local rows_live rows_db f
    rows_live=$(count_rows "$backend" "$dir" "$dbname")
    ((rows_live >= MINT_OK)) || die "while running: $rows_live issued_tokens rows for $MINT_OK successful mints"
    log "stopping the server(s) (SIGTERM)"
    stop_servers || die "a server exited with status $? after SIGTERM"
    for f in "${SERVER_LOGS[@]}"; do
        if grep -E ' (WARN|ERROR) |panick|database is locked' "$f" | tail -n 20 >&2; then
            die "$f has warnings or errors (above)"
        fi
    done
    rows_db=$(count_rows "$backend" "$dir" "$dbname")
    ((rows_db == rows_live)) || die "issued_tokens had $rows_live rows before shutdown and $rows_db after"
    # wrk stops counting at the deadline while up to CONNS requests are still in flight; those are
    # minted and recorded by the server but never counted as successes. So: every success has a
    # row, and at most CONNS rows per mint run (warm-up + measured) lack a counted response.
    local slack=$((2 * CONNS))
    log "issued_tokens rows: $rows_db; 200 responses counted by wrk + seed mint: $MINT_OK; server counter(s): $issued"
    ((rows_db >= MINT_OK)) || die "only $rows_db issued_tokens rows for $MINT_OK successful mints: tokens were not recorded"
    ((rows_db - MINT_OK <= slack)) || die "$rows_db rows but only $MINT_OK successful mints (more than $slack in flight?)"
    if [[ $issued != unknown ]]; then
        ((rows_db == issued)) || die "issued_tokens has $rows_db rows but the server(s) issued $issued tokens"
    fi
    local notes="- **$label**: peak resident memory $(awk -v k="$rss_max_kb" 'BEGIN {printf "%.1f", k / 1024}') MB"
    ((replicas > 1)) && notes+=" (all replicas together)"
    notes+="; issued_tokens rows (same before and after shutdown, counted by $([[ $backend == postgres ]] && echo psql || echo 'python sqlite3')): $rows_db;"
    notes+=" successful mint responses (incl. warm-up and seed): $MINT_OK; jobtoken_tokens_issued_total: $issued"
    notes+=$'\n'"  - CPU during each measured run ($(nproc) cores = $(($(nproc) * 100))%):"
    for op in "${OPS[@]}"; do
        notes+=$'\n'"    - $op: ${CPU_NOTE[$op]}"
    done
    CONFIG_NOTES+=("$notes")
    BASES=()
    SERVER_LOGS=()
}

seed() {
    log "seeding: user, group, project, membership, runner, resource server, pipeline"
    local user_id group_id project_id runner_json runner_id runner_secret rs_json rs_id rs_secret sub_id target_id code
    user_id=$(api POST /api/v1/users '{"username":"bench-dev"}' | json_get id)
    group_id=$(api POST /api/v1/groups '{"path":"bench"}' | json_get id)
    project_id=$(api POST /api/v1/projects "{\"path\":\"app\",\"namespace_id\":$group_id}" | json_get id)
    api PUT "/api/v1/projects/$project_id/members/$user_id" '{"access_level":30}' >/dev/null
    runner_json=$(api POST /api/v1/runners '{"runner_type":"instance","maximum_timeout":3600,"description":"bench"}')
    runner_id=$(json_get client_id <<<"$runner_json")
    runner_secret=$(json_get client_secret <<<"$runner_json")
    rs_json=$(api POST /api/v1/resource_servers '{"name":"bench-registry"}')
    rs_id=$(json_get client_id <<<"$rs_json")
    rs_secret=$(json_get client_secret <<<"$rs_json")
    JOB_ID=$(api POST "/api/v1/projects/$project_id/pipelines" \
        "{\"user_id\":$user_id,\"ref\":\"main\",\"ref_type\":\"branch\",\"ref_protected\":true,\"sha\":\"4b825dc642cb6eb9a060e54bf8d69288fbee4904\",\"jobs\":[{\"name\":\"build\"}]}" |
        json_get jobs.0.id)
    RUNNER_AUTH=$(basic "$runner_id" "$runner_secret")
    RS_AUTH=$(basic "$rs_id" "$rs_secret")
    MINT_BODY="grant_type=client_credentials&job_id=$JOB_ID"

    # First mint: starts the job and gives the token that introspection is benchmarked with.
    code=$(curl -sS -o "$TMP/mint.json" -w '%{http_code}' -H "Authorization: $RUNNER_AUTH" \
        --data-binary "$MINT_BODY" "$BASE/oauth/token")
    [[ $code == 200 ]] || die "first mint -> $code $(cat "$TMP/mint.json")"
    TOKEN=$(json_get access_token <"$TMP/mint.json")
    log "job $JOB_ID is $(api GET "/api/v1/jobs/$JOB_ID" | json_get status); scope: $(json_get scope <"$TMP/mint.json")"
    # Every replica must accept the token (same keys, same issuer) before the runs.
    local b
    for b in "${BASES[@]}"; do
        code=$(curl -sS -o "$TMP/introspect.json" -w '%{http_code}' -H "Authorization: $RS_AUTH" \
            --data-binary "token=$TOKEN" "$b/oauth/introspect")
        [[ $code == 200 ]] || die "introspection on $b -> $code $(cat "$TMP/introspect.json")"
        [[ $(json_get active <"$TMP/introspect.json") == true ]] ||
            die "the seeded token is not active on $b: $(cat "$TMP/introspect.json")"
    done
    # A cross-project decision that walks both hierarchies: bench/deep/target admits the jobs of
    # every project in the group bench through an entry on its parent group.
    sub_id=$(api POST /api/v1/groups "{\"path\":\"deep\",\"parent_id\":$group_id}" | json_get id)
    target_id=$(api POST /api/v1/projects "{\"path\":\"target\",\"namespace_id\":$sub_id}" | json_get id)
    api PUT "/api/v1/projects/$target_id/members/$user_id" '{"access_level":20}' >/dev/null
    api POST "/api/v1/groups/$sub_id/job_token_scope/groups_allowlist" "{\"source_group_id\":$group_id}" >/dev/null
    DECIDE_BODY="{\"token\":\"$TOKEN\",\"project\":\"bench/deep/target\",\"scope\":\"read_repository\"}"
    for b in "${BASES[@]}"; do
        code=$(curl -sS -o "$TMP/decide.json" -w '%{http_code}' -H "Authorization: $RS_AUTH" \
            -H 'Content-Type: application/json' --data-binary "$DECIDE_BODY" "$b/api/v1/job_token/authorize")
        [[ $code == 200 && $(json_get allowed <"$TMP/decide.json") == true ]] || die "decision on $b -> $code $(cat "$TMP/decide.json")"
        code=$(curl -sS -o "$TMP/jwks.json" -w '%{http_code}' "$b/.well-known/jwks.json")
        [[ $code == 200 ]] || die "jwks on $b -> $code"
    done
    MINT_OK=1 # successful mints so far (the seed mint above)
}

# sample_memory: the largest sum of the replicas' VmRSS, sampled every 0.5 s, into $RSS_FILE.
sample_memory() {
    RSS_FILE="$TMP/rss.max"
    echo 0 >"$RSS_FILE"
    (
        max=0
        while kill -0 "${SERVER_PIDS[0]}" 2>/dev/null; do
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

# count_rows BACKEND DIR DBNAME: issued_tokens rows as another process sees them (committed
# transactions only); all of them belong to the benchmark's job.
count_rows() {
    if [[ $1 == postgres ]]; then
        local n total
        n=$(psql_c "$3" "SELECT count(*) FROM issued_tokens WHERE job_id = $JOB_ID") || die "psql failed"
        total=$(psql_c "$3" "SELECT count(*) FROM issued_tokens") || die "psql failed"
        ((n == total)) || die "issued_tokens: $n rows for job $JOB_ID but $total in all"
        echo "$n"
        return
    fi
    python3 - "$2/db/jobtoken.db" "$JOB_ID" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=30)
(n,) = con.execute("SELECT count(*) FROM issued_tokens WHERE job_id = ?", (int(sys.argv[2]),)).fetchone()
(total,) = con.execute("SELECT count(*) FROM issued_tokens").fetchone()
assert n == total, (n, total)
print(n)
PY
}

declare -A CPU_NOTE=()

# run NAME PATH METHOD BODY AUTH COUNT [TYPE]: warm-up + measured run, one wrk per replica with
# an equal share of the connections and threads; fills CELL and CPU_NOTE (req/s summed, the
# worst replica's p50 and p99).
run() {
    local name=$1 path=$2 method=$3 body=$4 auth=$5 count=$6 type=${7:-}
    local n=${#BASES[@]} phase i out
    local conns=$(((CONNS + n - 1) / n)) threads=$(((THREADS + n - 1) / n))
    for phase in warmup measure; do
        local dur=$SECONDS_RUN
        [[ $phase == warmup ]] && dur=$WARMUP
        out="$TMP/${CONFIGS[-1]%%|*}.$name.$phase"
        log "$name: $phase ${dur}s, $CONNS connections, $THREADS threads, $n replica(s)"
        local cpu0 sys0 pg0 perf_pid=""
        cpu0=$(server_cpu_ticks)
        pg0=$(pg_cpu_ticks)
        sys0=$(machine_ticks)
        if [[ $phase == measure && ${BENCH_PROFILE:-0} == 1 ]]; then
            perf record -q -F 499 -p "${SERVER_PIDS[0]}" -o "$out.perf.data" -- sleep "$dur" >/dev/null 2>&1 &
            perf_pid=$!
        fi
        local -a pids=()
        for ((i = 0; i < n; i++)); do
            (
                TIMEFORMAT='%U %S'
                rc=0
                { time BENCH_METHOD=$method BENCH_BODY=$body BENCH_TYPE=$type BENCH_AUTH=$auth BENCH_COUNT=$count \
                    BENCH_OUT="$out.$i.kv" wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 10s --latency -s "$LUA" \
                    "${BASES[$i]}$path" >"$out.$i.txt" 2>&1 || rc=$?; } 2>"$out.$i.time"
                exit "$rc"
            ) &
            pids+=($!)
        done
        for ((i = 0; i < n; i++)); do
            wait "${pids[$i]}" || { cat "$out.$i.txt" >&2; die "wrk exited with status $? ($name $phase, replica $i)"; }
        done
        local cpu1 sys1 pg1
        cpu1=$(server_cpu_ticks)
        pg1=$(pg_cpu_ticks)
        sys1=$(machine_ticks)
        if [[ -n $perf_pid ]]; then
            wait "$perf_pid" || true
            perf report -i "$out.perf.data" --sort dso,symbol --stdio 2>/dev/null |
                grep '%' | grep -v '^#' | tr -s ' ' | sed 's/ - -$//' | head -n 40 \
                >"$RESULTS_DIR/profile-${CONFIGS[-1]%%|*}-$name.txt" || true
        fi
        for ((i = 0; i < n; i++)); do
            [[ -s $out.$i.kv ]] || { cat "$out.$i.txt" >&2; die "wrk wrote no summary ($name $phase, replica $i)"; }
            kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || { cat "$out.$i.txt" >&2; die "replica $i died during $name $phase"; }
            local non2xx sock
            non2xx=$(kv "$out.$i.kv" non2xx)
            sock=$(($(kv "$out.$i.kv" sock_connect) + $(kv "$out.$i.kv" sock_read) + $(kv "$out.$i.kv" sock_write) + $(kv "$out.$i.kv" sock_timeout)))
            if [[ $count == 1 ]]; then
                MINT_OK=$((MINT_OK + $(kv "$out.$i.kv" ok)))
                local bad
                bad=$(kv "$out.$i.kv" not_ok)
                ((bad == 0)) || { cat "$out.$i.txt" >&2; die "$name $phase: $bad non-200 responses, first: $(kv "$out.$i.kv" first_bad)"; }
            fi
            if ((non2xx != 0 || sock != 0)); then
                cat "$out.$i.txt" >&2
                die "$name $phase: $non2xx non-2xx responses, $sock socket errors (replica $i)"
            fi
        done
    done
    for ((i = 0; i < n; i++)); do cat "$out.$i.txt"; done
    local rps=0 p50=0 p99=0 us=0 wrk_time=""
    for ((i = 0; i < n; i++)); do
        rps=$(awk -v a="$rps" -v b="$(kv "$out.$i.kv" rps)" 'BEGIN {print a + b}')
        p50=$(awk -v a="$p50" -v b="$(kv "$out.$i.kv" p50_us)" 'BEGIN {print (b > a) ? b : a}')
        p99=$(awk -v a="$p99" -v b="$(kv "$out.$i.kv" p99_us)" 'BEGIN {print (b > a) ? b : a}')
        us=$(awk -v a="$us" -v b="$(kv "$out.$i.kv" duration_us)" 'BEGIN {print (b > a) ? b : a}')
        wrk_time+=" $(cat "$out.$i.time")"
    done
    CELL["${CONFIGS[-1]%%|*},$name"]="$(printf '%.0f' "$rps") | $(awk -v u="$p50" 'BEGIN {printf "%.2f ms", u / 1000}') | $(awk -v u="$p99" 'BEGIN {printf "%.2f ms", u / 1000}')"
    CPU_NOTE[$name]=$(awk -v t="$((cpu1 - cpu0))" -v pg="$((pg1 - pg0))" -v hz="$(getconf CLK_TCK)" -v us="$us" \
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

# ---------------------------------------------------------------- the runs
mkdir -p "$RESULTS_DIR"
bench_config sqlite "SQLite" sqlite 1
if [[ $DATABASE == postgres ]]; then
    start_postgres
    bench_config pg1 "PostgreSQL, 1 replica" postgres 1
    ((REPLICAS > 1)) && bench_config "pg$REPLICAS" "PostgreSQL, $REPLICAS replicas" postgres "$REPLICAS"
fi

# ---------------------------------------------------------------- report
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
CPU=${CPU:-unknown}
ELAPSED=$(($(date +%s) - SCRIPT_START))
# Before the report is written: the report itself is a tracked file.
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty tree)')"
{
    echo "# jobtoken load benchmark"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) — machine: $(nproc) CPUs, $CPU; $(uname -sr)"
    echo "commit $COMMIT"
    echo
    echo "wrk $THREADS threads, $CONNS connections, ${SECONDS_RUN}s per run after a ${WARMUP}s warm-up," \
        "on the same machine; ES256; server workers = one per core."
    if [[ $DATABASE == postgres ]]; then
        echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on the same machine" \
            "($([[ $PG_HOST == 127.0.0.1 ]] && echo 'TCP on 127.0.0.1' || echo 'unix socket')), fsync on," \
            "synchronous_commit on, full_page_writes on, shared_buffers 256MB, max_wal_size 4GB;" \
            "with several replicas each gets its own wrk with an equal share of the connections:" \
            "req/s summed, the worst replica's p50 and p99."
    fi
    echo
    header="| operation |" rule="| --- |"
    for c in "${CONFIGS[@]}"; do
        header+=" ${c#*|} req/s | p50 | p99 |"
        rule+=" ---: | ---: | ---: |"
    done
    echo "$header"
    echo "$rule"
    for op in "${OPS[@]}"; do
        line="| ${OP_LABEL[$op]} |"
        for c in "${CONFIGS[@]}"; do line+=" ${CELL[${c%%|*},$op]} |"; done
        echo "$line"
    done
    echo
    echo "No errors: any non-2xx response or socket error fails the run."
    echo
    printf '%s\n' "${CONFIG_NOTES[@]}"
    echo "- whole script: ${ELAPSED}s"
} >"$RESULTS_DIR/latest.md"
echo
cat "$RESULTS_DIR/latest.md"
