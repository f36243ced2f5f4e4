#!/usr/bin/env bash
# Equal-time rejection (issue 7 point 11): an unknown client_id and a known client_id with a
# wrong secret must cost the server the same. Starts the release binary on a free port in its own
# temporary directory, creates a runner through the admin API, then times `POST /oauth/token`
# with both kinds of bad credentials, interleaved and sequential, and prints both medians and
# their difference in microseconds. Bounded: TIMING_PAIRS pairs or TIMING_SECONDS, whichever
# comes first. Stops the server and removes the directory on exit.
#
# Environment:
#   TIMING_PAIRS        request pairs to measure (default 4000)
#   TIMING_SECONDS      upper bound on the measuring time (default 60)
#   BENCH_NO_BUILD=1    skip `cargo build --release --locked`
#   BENCH_BIN           server binary (default target/release/jobtoken)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BIN=${BENCH_BIN:-$ROOT/target/release/jobtoken}
PAIRS=${TIMING_PAIRS:-4000}
MAX_SECONDS=${TIMING_SECONDS:-60}
ADMIN_TOKEN="timing-admin-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')"

log() { printf '[timing %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"
# shellcheck source=benches/server.sh
source "$BENCH_DIR/server.sh"
build_server

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jobtoken-timing.XXXXXX")
SERVER_PID=""
SERVER_OUT="$TMP/server.out"
SERVER_LOG="$TMP/server.log"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server || true
    [[ $rc -ne 0 && -s $SERVER_LOG ]] && tail -n 20 "$SERVER_LOG" >&2
    rm -rf "$TMP"
    exit "$rc"
}
trap_cleanup

start_server

api() {
    curl -fsS -X "$1" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
        --data-binary "$3" "$BASE$2" || die "$1 $2 failed"
}
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# A runner (the known client id), plus a resource server so both client tables have rows.
RUNNER_ID=$(api POST /api/v1/runners '{"runner_type":"instance","description":"timing"}' | field client_id)
api POST /api/v1/resource_servers '{"name":"timing-registry"}' >/dev/null

log "measuring up to $PAIRS pairs (at most ${MAX_SECONDS}s)"
python3 "$BENCH_DIR/client_auth_timing.py" "$BASE" "$RUNNER_ID" 1 "$PAIRS" "$MAX_SECONDS"
