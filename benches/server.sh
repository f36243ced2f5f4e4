# Shared by the benchmark scripts (sourced, not run): building, starting and stopping the release
# server. The caller defines `log` and `die` and sets ROOT and BIN (and, before `start_server`,
# TMP, ADMIN_TOKEN, SERVER_OUT and SERVER_LOG; optionally SERVER_DATABASE, default
# $TMP/db/jobtoken.db, and SERVER_ENV, an array of extra KEY=VALUE settings); `start_server` sets
# SERVER_PID and BASE.

# `cargo build --release --locked` unless BENCH_NO_BUILD=1; fails without a binary at $BIN, and
# makes $BIN absolute.
build_server() {
    if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
        log "building (cargo build --release --locked)"
        (cd "$ROOT" && cargo build --release --locked)
    fi
    [[ -x $BIN ]] || die "no server binary at $BIN"
    BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" # the server runs in $TMP
}

# Starts "$BIN serve" in $TMP on a free port with default settings (plus SERVER_ENV), and waits for its
# `jobtoken listening on …` line.
start_server() {
    log "starting $BIN serve in $TMP"
    (
        cd "$TMP"
        unset JOBTOKEN_WORKERS JOBTOKEN_ISSUER JOBTOKEN_DEFAULT_AUDIENCE JOBTOKEN_SIGNING_ALG RUST_LOG \
            JOBTOKEN_CONFIG JOBTOKEN_LOG_FORMAT JOBTOKEN_ADMIN_BIND JOBTOKEN_TLS_CERT JOBTOKEN_TLS_KEY
        export JOBTOKEN_BIND=127.0.0.1:0
        # The access log writes a line per request (GBs over a run); BENCH_ACCESS_LOG=true measures it.
        export JOBTOKEN_ACCESS_LOG="${BENCH_ACCESS_LOG:-false}"
        export JOBTOKEN_DATABASE="${SERVER_DATABASE:-$TMP/db/jobtoken.db}"
        export JOBTOKEN_KEYS_DIR="$TMP/keys"
        export JOBTOKEN_ADMIN_TOKEN="$ADMIN_TOKEN"
        if [[ -n ${SERVER_ENV+x} ]] && ((${#SERVER_ENV[@]})); then
            export "${SERVER_ENV[@]}"
        fi
        exec "$BIN" serve >"$SERVER_OUT" 2>"$SERVER_LOG"
    ) &
    SERVER_PID=$!

    BASE=""
    for _ in $(seq 1 300); do
        if line=$(grep -m1 '^jobtoken listening on ' "$SERVER_OUT" 2>/dev/null); then
            BASE=$(awk '{print $4}' <<<"$line")
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited before listening"
        sleep 0.1
    done
    [[ -n $BASE ]] || die "server did not print its listening line within 30 s"
    [[ $BASE == http://127.0.0.1:* ]] || die "unexpected listen address: $BASE"
    log "server pid $SERVER_PID at $BASE"
}

# Runs the caller's `cleanup` on exit, also after Ctrl-C or SIGTERM.
trap_cleanup() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# SIGTERM, then wait up to 20 s (the server drains for at most 10 s), then SIGKILL.
stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 200); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server ignored SIGTERM for 20 s; killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    local rc=0
    wait "$SERVER_PID" 2>/dev/null || rc=$?
    SERVER_PID=""
    return "$rc"
}
