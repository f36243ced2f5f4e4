# The report of benches/run.sh (sourced): writes benches/results/latest.md and latest.tsv (the
# chart's input) from the arrays run.sh filled (RPS, P50, P99, RSS, LABEL, CONFIGS, SIGN_RPS, …).

fmt_int() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } print s r }'; }
fmt_ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
fmt_mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
# ratio A B: A/B as a percentage (or × when ≥ 10, i.e. 1000%)
ratio_pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0 || a == "") { print "–"; exit } printf "%.0f%%", 100 * a / b }'; }
ratio_x() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0 || a == "") { print "–"; exit } printf "%.2f×", a / b }'; }
# verdict A OP B (OP is >= or <): "met" or "**missed**"
verdict() {
    if awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { a += 0; b += 0; exit !(op == ">=" ? a >= b : a < b) }'; then
        echo met
    else
        echo "**missed**"
    fi
}

write_report() {
    local CPU ELAPSED COMMIT http_rps peer_rps="" c op p99max=0 worst=""
    CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    CPU=${CPU:-unknown}
    COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (src/ modified)')"
    http_rps=${RPS[ceil,http]}
    [[ $PEER == oidc-provider ]] && peer_rps=${RPS[peer,peer]}
    ELAPSED=$(($(date +%s) - SCRIPT_START))
    local tsv="$RESULTS_DIR/latest.tsv"
    {
        printf 'kind\tconfig\tlabel\top\trps\tp50_us\tp99_us\n'
        printf 'ceiling\tsign\tsign-only %s, %s threads\tsign\t%s\t\t\n' "$ALG" "$(nproc)" "$SIGN_RPS"
        printf 'ceiling\thttp\ttrivial HTTP responder\thttp\t%s\t%s\t%s\n' "$http_rps" "${P50[ceil,http]}" "${P99[ceil,http]}"
        [[ -n $peer_rps ]] && printf 'peer\tpeer\t%s\tmint\t%s\t%s\t%s\n' "${LABEL[peer]}" "$peer_rps" "${P50[peer,peer]}" "${P99[peer,peer]}"
        for c in "${CONFIGS[@]}"; do
            for op in mint introspect decide mixed jwks; do
                [[ -n ${RPS[$c,$op]:-} ]] || continue
                printf 'jobtoken\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "${LABEL[$c]}" "$op" "${RPS[$c,$op]}" "${P50[$c,$op]}" "${P99[$c,$op]}"
            done
        done
    } >"$tsv"
    {
        echo "# jobtoken load benchmark"
        echo
        echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) — $(nproc) CPUs, $CPU; $(uname -sr); $(awk '/^MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo) RAM"
        echo
        echo "lscpu: $(LC_ALL=C lscpu 2>/dev/null | awk -F': *' '/^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Hypervisor vendor|L2 cache|L3 cache)/ {printf "%s%s: %s", sep, $1, $2; sep = "; "}')"
        echo
        echo "commit $COMMIT; \`${BENCH_CMDLINE:-benches/run.sh}\`"
        echo
        echo "wrk $THREADS threads, $CONNS connections, ${SECONDS_RUN}s per run after a ${WARMUP}s warm-up, on the same" \
            "machine as the server; $ALG; jobtoken workers = one per core. The fleet: 10,000 pending jobs of 10,000" \
            "users in 1,000 private projects under 10 × 10 nested groups, bulk-loaded (benches/seed.py); 10,000" \
            "distinct tokens for introspection and decisions, 1,000 distinct decision targets, each decision allowed" \
            "by a groups_allowlist entry on the target's top group for the source's top group. Large: the same plus" \
            "99,000 projects and 1,000,000 allowlist entries in all."
        if [[ $DATABASE == postgres ]]; then
            echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on the same machine" \
                "($([[ $PG_HOST == 127.0.0.1 ]] && echo 'TCP on 127.0.0.1' || echo 'unix socket')), fsync on," \
                "synchronous_commit on, full_page_writes on; with several replicas each gets its own wrk with an" \
                "equal share of the connections (and of the fleet's jobs): req/s summed, the worst replica's p50 and p99."
        fi
        echo
        echo "## Ceilings, measured in the same run"
        echo
        echo "| ceiling | per second | p50 | p99 | peak RSS |"
        echo "| --- | ---: | ---: | ---: | ---: |"
        echo "| sign-only: $ALG signatures of a job token's claims, $(nproc) threads, no HTTP (\`benches/ceilings.rs\`) | $(fmt_int "$SIGN_RPS") | – | – | – |"
        echo "| trivial HTTP responder: actix-web, $(nproc) workers, fixed 100-byte body, same wrk load | $(fmt_int "$http_rps") | $(fmt_ms "${P50[ceil,http]}") | $(fmt_ms "${P99[ceil,http]}") | $(fmt_mb "${RSS[ceil]}") |"
        if [[ -n $peer_rps ]]; then
            echo "| peer: ${LABEL[peer]}, ${BENCH_PEER_WORKERS:-$(nproc)} processes, in memory, ES256 JWT access tokens via client_credentials + resource indicator | $(fmt_int "$peer_rps") | $(fmt_ms "${P50[peer,peer]}") | $(fmt_ms "${P99[peer,peer]}") | $(fmt_mb "${RSS[peer]}") |"
        fi
        echo
        echo "## jobtoken"
        echo
        echo "Every figure as a share of the trivial responder's and of the sign-only ceiling; mint also as a multiple of oidc-provider."
        echo
        echo "| configuration | operation | req/s | p50 | p99 | ÷ HTTP ceiling | ÷ sign ceiling | × oidc-provider |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        for c in "${CONFIGS[@]}"; do
            for op in mint introspect decide mixed jwks; do
                [[ -n ${RPS[$c,$op]:-} ]] || continue
                local peer_cell="–"
                [[ $op == mint && -n $peer_rps ]] && peer_cell=$(ratio_x "${RPS[$c,$op]}" "$peer_rps")
                echo "| ${LABEL[$c]} | ${OP_LABEL[$op]} | $(fmt_int "${RPS[$c,$op]}") | $(fmt_ms "${P50[$c,$op]}") | $(fmt_ms "${P99[$c,$op]}") | $(ratio_pct "${RPS[$c,$op]}" "$http_rps") | $(ratio_pct "${RPS[$c,$op]}" "$SIGN_RPS") | $peer_cell |"
            done
        done
        echo
        echo "No errors: any non-2xx response, socket error, inactive introspection or denied decision fails the run." \
            "Mixed: per 10 requests 4 introspections and 3 decisions (alternating), 2 re-mints, 1 JWKS."
        local pair small big any=0
        for pair in "sqlite sqlite_large" "pg1 pg1_large"; do
            small=${pair% *} big=${pair#* }
            [[ -n ${RPS[$big,mint]:-} ]] || continue
            if ((!any)); then
                echo
                echo "## Large database vs small"
                echo
                echo "| operation | small req/s | large req/s | large ÷ small | small p99 | large p99 |"
                echo "| --- | ---: | ---: | ---: | ---: | ---: |"
                any=1
            fi
            for op in mint introspect decide; do
                echo "| ${LABEL[$small]}: ${OP_LABEL[$op]} | $(fmt_int "${RPS[$small,$op]}") | $(fmt_int "${RPS[$big,$op]}") | $(ratio_pct "${RPS[$big,$op]}" "${RPS[$small,$op]}") | $(fmt_ms "${P99[$small,$op]}") | $(fmt_ms "${P99[$big,$op]}") |"
            done
        done
        echo
        echo "## Peak resident memory"
        echo
        echo "| configuration | peak RSS (all processes of the server) |"
        echo "| --- | ---: |"
        for c in "${CONFIGS[@]}"; do echo "| ${LABEL[$c]} | $(fmt_mb "${RSS[$c]}") |"; done
        echo
        echo "## Issue 12 targets (SQLite, $ALG, $CONNS connections, this machine)"
        echo
        echo "| target | measured | |"
        echo "| --- | ---: | --- |"
        for op in mint introspect decide jwks; do
            p99max=$(awk -v a="$p99max" -v b="${P99[sqlite,$op]}" 'BEGIN { print (b > a) ? b : a }')
        done
        echo "| fleet mint ≥ 25,000/s | $(fmt_int "${RPS[sqlite,mint]}") | $(verdict "${RPS[sqlite,mint]}" ">=" 25000) |"
        echo "| introspection ≥ 40,000/s | $(fmt_int "${RPS[sqlite,introspect]}") | $(verdict "${RPS[sqlite,introspect]}" ">=" 40000) |"
        echo "| decisions ≥ 40,000/s | $(fmt_int "${RPS[sqlite,decide]}") | $(verdict "${RPS[sqlite,decide]}" ">=" 40000) |"
        echo "| JWKS ≥ 100,000/s | $(fmt_int "${RPS[sqlite,jwks]}") | $(verdict "${RPS[sqlite,jwks]}" ">=" 100000) |"
        echo "| p99 < 5 ms (worst of the four) | $(fmt_ms "$p99max") | $(verdict "$p99max" "<" 5000) |"
        if [[ -n ${RPS[sqlite_large,mint]:-} ]]; then
            for op in mint introspect decide; do
                worst=$(awk -v w="$worst" -v a="${RPS[sqlite_large,$op]}" -v b="${RPS[sqlite,$op]}" 'BEGIN { r = 100 * a / b; print (w == "" || r < w) ? r : w }')
            done
            echo "| large within 10% of small (worst operation) | $(printf '%.0f%%' "$worst") | $(verdict "$worst" ">=" 90) |"
        fi
        echo "| resident memory < 64 MB | $(fmt_mb "${RSS[sqlite]}") | $(verdict "${RSS[sqlite]}" "<" 65536) |"
        [[ -n $peer_rps ]] && echo "| mint ≥ 6× oidc-provider | $(ratio_x "${RPS[sqlite,mint]}" "$peer_rps") | $(verdict "${RPS[sqlite,mint]}" ">=" "$((6 * peer_rps))") |"
        [[ -n ${RPS[pg1,mint]:-} ]] && echo "| PostgreSQL mint ≥ 12,000/s | $(fmt_int "${RPS[pg1,mint]}") | $(verdict "${RPS[pg1,mint]}" ">=" 12000) |"
        echo
        echo "## Durability and CPU"
        echo
        echo "Every counted token response has its \`issued_tokens\` row, read by another process while the server runs and again after SIGTERM; the rows equal the servers' \`jobtoken_tokens_issued_total\`."
        echo
        printf '%s\n' "${CONFIG_NOTES[@]}"
        echo "- ceilings: sign-only \`$SIGN_LINE\`; trivial responder: ${CPU_NOTE[ceil,http]}"
        [[ -n $peer_rps ]] && echo "- oidc-provider: ${CPU_NOTE[peer,peer]}"
        echo
        echo "## Time taken"
        echo
        echo "| phase | seconds |"
        echo "| --- | ---: |"
        local p
        for p in "${PHASES[@]}"; do echo "| ${p%|*} | ${p##*|} |"; done
        echo "| **whole script** | **$ELAPSED** |"
    } >"$RESULTS_DIR/latest.md"
    # The headline for README "Performance" (run.sh copies it between the README's markers).
    {
        printf 'Latest run (%s, `%s`, %ss per operation): ' "$(date -u +%Y-%m-%d)" "${BENCH_CMDLINE:-benches/run.sh}" "$SECONDS_RUN"
        printf 'on SQLite a fleet mint of **%s tokens/s**' "$(fmt_int "${RPS[sqlite,mint]}")"
        [[ -n $peer_rps ]] && printf ' (**%s oidc-provider**, %s/s in the same run)' "$(ratio_x "${RPS[sqlite,mint]}" "$peer_rps")" "$(fmt_int "$peer_rps")"
        printf ', %s of the sign-only ceiling (%s ES256 signatures/s on all cores); ' "$(ratio_pct "${RPS[sqlite,mint]}" "$SIGN_RPS")" "$(fmt_int "$SIGN_RPS")"
        printf 'introspection %s/s and decisions %s/s over 10,000 distinct tokens, %s and %s of a trivial actix-web responder (%s/s under the same load); ' \
            "$(fmt_int "${RPS[sqlite,introspect]}")" "$(fmt_int "${RPS[sqlite,decide]}")" \
            "$(ratio_pct "${RPS[sqlite,introspect]}" "$http_rps")" "$(ratio_pct "${RPS[sqlite,decide]}" "$http_rps")" "$(fmt_int "$http_rps")"
        printf 'JWKS %s/s (%s); ' "$(fmt_int "${RPS[sqlite,jwks]}")" "$(ratio_pct "${RPS[sqlite,jwks]}" "$http_rps")"
        printf 'p99 of the four up to %s; ' "$(fmt_ms "$p99max")"
        [[ -n ${RPS[sqlite_large,mint]:-} ]] && printf 'the large database (100,000 projects, 1,000,000 allowlist entries) at %s of the small one at worst; ' "$(printf '%.0f%%' "$worst")"
        printf 'peak RSS %s' "$(fmt_mb "${RSS[sqlite]}")"
        [[ -n ${RPS[pg1,mint]:-} ]] && printf '; PostgreSQL ×1 mint %s/s, introspection %s/s' "$(fmt_int "${RPS[pg1,mint]}")" "$(fmt_int "${RPS[pg1,introspect]}")"
        printf '.\n'
    } >"$RESULTS_DIR/headline.md"
}
