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

# ---------------------------------------------------------------- server lifecycle
TMP=$(mktemp -d "${TMPDIR:-/tmp}/jobtoken-bench.XXXXXX")
SERVER_PID=""
SAMPLER_PID=""
SERVER_LOG="$TMP/server.log"
SERVER_OUT="$TMP/server.out"

show_server_log() {
    if [[ -s $SERVER_LOG ]]; then
        if grep -qE ' (WARN|ERROR) |panick|database is locked' "$SERVER_LOG"; then
            log "warnings and errors in the server's stderr (last 20):"
            grep -E ' (WARN|ERROR) |panick|database is locked' "$SERVER_LOG" | tail -n 20 >&2
        fi
        log "last 40 lines of the server's stderr ($SERVER_LOG):"
        tail -n 40 "$SERVER_LOG" >&2
    else
        log "server stderr is empty"
    fi
}

stop_sampler() {
    if [[ -n $SAMPLER_PID ]]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=""
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_sampler
    if [[ $rc -ne 0 ]]; then
        [[ -n $SERVER_PID ]] && ! kill -0 "$SERVER_PID" 2>/dev/null && log "the server is no longer running"
        show_server_log
    fi
    stop_server || true
    [[ -n $FAIL_MSG ]] && log "FAILED: $FAIL_MSG"
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap_cleanup

start_server

# ---------------------------------------------------------------- seeding via the admin API
# api METHOD PATH [JSON]: admin call; prints the body, fails on any status >= 300.
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

log "seeding: user, group, project, membership, runner, resource server, pipeline"
USER_ID=$(api POST /api/v1/users '{"username":"bench-dev"}' | json_get id)
GROUP_ID=$(api POST /api/v1/groups '{"path":"bench"}' | json_get id)
PROJECT_ID=$(api POST /api/v1/projects "{\"path\":\"app\",\"namespace_id\":$GROUP_ID}" | json_get id)
api PUT "/api/v1/projects/$PROJECT_ID/members/$USER_ID" '{"access_level":30}' >/dev/null
RUNNER_JSON=$(api POST /api/v1/runners '{"runner_type":"instance","maximum_timeout":3600,"description":"bench"}')
RUNNER_ID=$(json_get client_id <<<"$RUNNER_JSON")
RUNNER_SECRET=$(json_get client_secret <<<"$RUNNER_JSON")
RS_JSON=$(api POST /api/v1/resource_servers '{"name":"bench-registry"}')
RS_ID=$(json_get client_id <<<"$RS_JSON")
RS_SECRET=$(json_get client_secret <<<"$RS_JSON")
JOB_ID=$(api POST "/api/v1/projects/$PROJECT_ID/pipelines" \
    "{\"user_id\":$USER_ID,\"ref\":\"main\",\"ref_type\":\"branch\",\"ref_protected\":true,\"sha\":\"4b825dc642cb6eb9a060e54bf8d69288fbee4904\",\"jobs\":[{\"name\":\"build\"}]}" |
    json_get jobs.0.id)
RUNNER_AUTH=$(basic "$RUNNER_ID" "$RUNNER_SECRET")
RS_AUTH=$(basic "$RS_ID" "$RS_SECRET")
MINT_BODY="grant_type=client_credentials&job_id=$JOB_ID"

# First mint: starts the job and gives the token that introspection is benchmarked with.
code=$(curl -sS -o "$TMP/mint.json" -w '%{http_code}' -H "Authorization: $RUNNER_AUTH" \
    --data-binary "$MINT_BODY" "$BASE/oauth/token")
[[ $code == 200 ]] || die "first mint -> $code $(cat "$TMP/mint.json")"
TOKEN=$(json_get access_token <<<"$(cat "$TMP/mint.json")")
log "job $JOB_ID is $(api GET "/api/v1/jobs/$JOB_ID" | json_get status); scope: $(json_get scope <"$TMP/mint.json")"
code=$(curl -sS -o "$TMP/introspect.json" -w '%{http_code}' -H "Authorization: $RS_AUTH" \
    --data-binary "token=$TOKEN" "$BASE/oauth/introspect")
[[ $code == 200 ]] || die "introspection -> $code $(cat "$TMP/introspect.json")"
[[ $(json_get active <"$TMP/introspect.json") == true ]] || die "the seeded token is not active: $(cat "$TMP/introspect.json")"
# A cross-project decision that walks both hierarchies: bench/deep/target admits the jobs of
# every project in the group bench through an entry on its parent group.
SUB_ID=$(api POST /api/v1/groups "{\"path\":\"deep\",\"parent_id\":$GROUP_ID}" | json_get id)
TARGET_ID=$(api POST /api/v1/projects "{\"path\":\"target\",\"namespace_id\":$SUB_ID}" | json_get id)
api PUT "/api/v1/projects/$TARGET_ID/members/$USER_ID" '{"access_level":20}' >/dev/null
api POST "/api/v1/groups/$SUB_ID/job_token_scope/groups_allowlist" "{\"source_group_id\":$GROUP_ID}" >/dev/null
DECIDE_BODY="{\"token\":\"$TOKEN\",\"project\":\"bench/deep/target\",\"scope\":\"read_repository\"}"
code=$(curl -sS -o "$TMP/decide.json" -w '%{http_code}' -H "Authorization: $RS_AUTH" \
    -H 'Content-Type: application/json' --data-binary "$DECIDE_BODY" "$BASE/api/v1/job_token/authorize")
[[ $code == 200 && $(json_get allowed <"$TMP/decide.json") == true ]] || die "decision -> $code $(cat "$TMP/decide.json")"
code=$(curl -sS -o "$TMP/jwks.json" -w '%{http_code}' "$BASE/.well-known/jwks.json")
[[ $code == 200 ]] || die "jwks -> $code"
MINT_OK=1   # successful mints so far (the seed mint above)

# ---------------------------------------------------------------- memory sampler
RSS_FILE="$TMP/rss.max"
echo 0 >"$RSS_FILE"
(
    max=0
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
        if [[ -n $kb ]] && ((kb > max)); then
            max=$kb
            echo "$max" >"$RSS_FILE"
        fi
        sleep 0.5
    done
) &
SAMPLER_PID=$!

# ---------------------------------------------------------------- load runs
# kv FILE KEY: value of KEY in a key=value file written by bench.lua's done().
kv() { sed -n "s/^$2=//p" "$1" | head -n1; }

declare -a ROWS=() CPU_NOTES=()
mkdir -p "$RESULTS_DIR"

# machine_ticks: "processes irq+softirq steal idle+iowait" clock ticks of all CPUs so far.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4, $7 + $8, $9, $5 + $6; exit}' /proc/stat; }

# server_cpu_ticks: user + system CPU time of the server so far, in clock ticks.
server_cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

# run NAME LABEL PATH METHOD BODY AUTH COUNT: warm-up + measured wrk run; fills ROWS.
run() {
    local name=$1 label=$2 path=$3 method=$4 body=$5 auth=$6 count=$7 type=${8:-}
    local out
    for phase in warmup measure; do
        local dur=$SECONDS_RUN
        [[ $phase == warmup ]] && dur=$WARMUP
        out="$TMP/$name.$phase"
        log "$name: $phase ${dur}s, $CONNS connections, $THREADS threads"
        local cpu0 sys0 perf_pid=""
        cpu0=$(server_cpu_ticks)
        sys0=$(machine_ticks)
        if [[ $phase == measure && ${BENCH_PROFILE:-0} == 1 ]]; then
            perf record -q -F 499 -p "$SERVER_PID" -o "$TMP/$name.perf.data" -- sleep "$dur" >/dev/null 2>&1 &
            perf_pid=$!
        fi
        local TIMEFORMAT='%U %S' wrk_rc=0
        { time BENCH_METHOD=$method BENCH_BODY=$body BENCH_TYPE=$type BENCH_AUTH=$auth BENCH_COUNT=$count BENCH_OUT="$out.kv" \
            wrk -t"$THREADS" -c"$CONNS" -d"${dur}s" --timeout 10s --latency -s "$LUA" "$BASE$path" \
            >"$out.txt" 2>&1 || wrk_rc=$?; } 2>"$out.time"
        ((wrk_rc == 0)) || { cat "$out.txt" >&2; die "wrk exited with status $wrk_rc ($name $phase)"; }
        local cpu1 sys1
        cpu1=$(server_cpu_ticks)
        sys1=$(machine_ticks)
        if [[ -n $perf_pid ]]; then
            wait "$perf_pid" || true
            perf report -i "$TMP/$name.perf.data" --sort dso,symbol --stdio 2>/dev/null |
                grep '%' | grep -v '^#' | tr -s ' ' | sed 's/ - -$//' | head -n 40 >"$RESULTS_DIR/profile-$name.txt" || true
        fi
        [[ -s $out.kv ]] || { cat "$out.txt" >&2; die "wrk wrote no summary ($name $phase)"; }
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$out.txt" >&2; die "server died during $name $phase"; }
        local non2xx sock
        non2xx=$(kv "$out.kv" non2xx)
        sock=$(($(kv "$out.kv" sock_connect) + $(kv "$out.kv" sock_read) + $(kv "$out.kv" sock_write) + $(kv "$out.kv" sock_timeout)))
        if [[ $count == 1 ]]; then
            MINT_OK=$((MINT_OK + $(kv "$out.kv" ok)))
            local bad
            bad=$(kv "$out.kv" not_ok)
            ((bad == 0)) || { cat "$out.txt" >&2; die "$name $phase: $bad non-200 responses, first: $(kv "$out.kv" first_bad)"; }
        fi
        if ((non2xx != 0 || sock != 0)); then
            cat "$out.txt" >&2
            die "$name $phase: $non2xx non-2xx responses, $sock socket errors"
        fi
    done
    cat "$out.txt"
    local rps p50 p99
    rps=$(kv "$out.kv" rps)
    p50=$(awk -v u="$(kv "$out.kv" p50_us)" 'BEGIN {printf "%.2f ms", u / 1000}')
    p99=$(awk -v u="$(kv "$out.kv" p99_us)" 'BEGIN {printf "%.2f ms", u / 1000}')
    CPU_NOTES+=("$name: $(awk -v t="$((cpu1 - cpu0))" -v hz="$(getconf CLK_TCK)" -v us="$(kv "$out.kv" duration_us)" \
        -v w="$(cat "$out.time")" -v m0="$sys0" -v m1="$sys1" -v n="$(nproc)" 'BEGIN {
            split(w, a, " "); split(m0, b, " "); split(m1, c, " "); s = us / 1e6
            srv = 100 * t / hz / s; gen = 100 * (a[1] + a[2]) / s
            tot = 0; for (i = 1; i <= 4; i++) { d[i] = c[i] - b[i]; tot += d[i] }
            for (i = 1; i <= 4; i++) d[i] = 100 * n * d[i] / tot
            other = d[1] - srv - gen; if (other < 0) other = 0
            printf "server %.0f%%, wrk %.0f%%, interrupts (loopback softirq) %.0f%%, steal %.0f%%, other processes %.0f%%, idle %.0f%%",
                srv, gen, d[2], d[3], other, d[4]}')")
    ROWS+=("| $label | $(printf '%.0f' "$rps") | $p50 | $p99 | 0 |")
}

run mint "mint (\`POST /oauth/token\`)" /oauth/token POST "$MINT_BODY" "$RUNNER_AUTH" 1
run introspect "introspect (\`POST /oauth/introspect\`)" /oauth/introspect POST "token=$TOKEN" "$RS_AUTH" 0
run decide "decision (\`POST /api/v1/job_token/authorize\`)" /api/v1/job_token/authorize POST "$DECIDE_BODY" "$RS_AUTH" 0 application/json
run jwks "JWKS (\`GET /.well-known/jwks.json\`)" /.well-known/jwks.json GET "" "" 0

stop_sampler
RSS_MAX_KB=$(cat "$RSS_FILE")
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
ISSUED_METRIC=$(curl -sS "$BASE/metrics" | awk '$1 == "jobtoken_tokens_issued_total" {print $2}')
ISSUED_METRIC=${ISSUED_METRIC:-unknown}

# ---------------------------------------------------------------- durability check
# count_rows: issued_tokens rows as another process sees them (committed WAL transactions only).
count_rows() {
    python3 - "$TMP/db/jobtoken.db" "$JOB_ID" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=30)
(n,) = con.execute("SELECT count(*) FROM issued_tokens WHERE job_id = ?", (int(sys.argv[2]),)).fetchone()
(total,) = con.execute("SELECT count(*) FROM issued_tokens").fetchone()
assert n == total, (n, total)
print(n)
EOF
}
# First while the server still runs: every answered mint must already be committed, not merely
# flushed at shutdown.
ROWS_LIVE=$(count_rows)
((ROWS_LIVE >= MINT_OK)) || die "while running: $ROWS_LIVE issued_tokens rows for $MINT_OK successful mints"

log "stopping the server (SIGTERM)"
stop_server || die "server exited with status $? after SIGTERM"
if grep -E ' (WARN|ERROR) |panick|database is locked' "$SERVER_LOG" | tail -n 20 >&2; then
    die "the server logged warnings or errors (above)"
fi

ROWS_DB=$(count_rows)
((ROWS_DB == ROWS_LIVE)) || die "issued_tokens had $ROWS_LIVE rows before shutdown and $ROWS_DB after"
# wrk stops counting at the deadline while up to CONNS requests are still in flight; those are
# minted and recorded by the server but never counted as successes. So: every success has a row,
# and at most CONNS rows per mint run (warm-up + measured) lack a counted response.
SLACK=$((2 * CONNS))
log "issued_tokens rows: $ROWS_DB; 200 responses counted by wrk + seed mint: $MINT_OK; server counter: $ISSUED_METRIC"
((ROWS_DB >= MINT_OK)) || die "only $ROWS_DB issued_tokens rows for $MINT_OK successful mints: tokens were not recorded"
((ROWS_DB - MINT_OK <= SLACK)) || die "$ROWS_DB rows but only $MINT_OK successful mints (more than $SLACK in flight?)"
if [[ $ISSUED_METRIC != unknown ]]; then
    ((ROWS_DB == ISSUED_METRIC)) || die "issued_tokens has $ROWS_DB rows but the server issued $ISSUED_METRIC tokens"
fi

# ---------------------------------------------------------------- report
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
CPU=${CPU:-unknown}
ELAPSED=$(($(date +%s) - SCRIPT_START))
mkdir -p "$RESULTS_DIR"
{
    echo "# jobtoken load benchmark"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) — machine: $(nproc) CPUs, $CPU; $(uname -sr)"
    echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty tree)')"
    echo
    echo "wrk $THREADS threads, $CONNS connections, ${SECONDS_RUN}s per run after a ${WARMUP}s warm-up," \
        "on the same machine; ES256; server workers = one per core."
    echo
    echo "| operation | req/s | p50 | p99 | errors |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "- peak resident memory: $(awk -v k="$RSS_MAX_KB" 'BEGIN {printf "%.1f", k / 1024}') MB sampled every 0.5 s" \
        "(VmHWM $(awk -v k="$HWM_KB" 'BEGIN {printf "%.1f", k / 1024}') MB)"
    echo "- CPU during each measured run ($(nproc) cores = $(($(nproc) * 100))%):"
    printf '  - %s\n' "${CPU_NOTES[@]}"
    echo "- issued_tokens rows (same before and after shutdown): $ROWS_DB; successful mint responses (incl. warm-up and seed): $MINT_OK;" \
        "server counter jobtoken_tokens_issued_total: $ISSUED_METRIC"
    echo "- whole script: ${ELAPSED}s"
} >"$RESULTS_DIR/latest.md"
echo
cat "$RESULTS_DIR/latest.md"
