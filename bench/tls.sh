#!/usr/bin/env bash
# The TLS scenarios of the benchmark suite: netloom's examples built with
# `--features tls` (aws-lc-rs) against the tokio peers on tokio-rustls with
# the same provider, both serving one ECDSA P-256 certificate (made here
# with the openssl CLI). bench/run.sh runs it for the scenarios named tls*;
# alone:
#
#     bench/tls.sh                          # every TLS scenario, RUNS=3, DURATION=5
#     QUICK=1 bench/tls.sh                  # DURATION=1 RUNS=1
#     SCENARIOS=tls-handshakes bench/tls.sh
#
# Scenarios (server pinned to SERVER_CPU with 1 loop / a current-thread
# runtime, load pinned to CLIENT_CPU):
#   tls-echo-64B-100c, tls-echo-16KiB-100c   echo example vs tokio-echo; load:
#       netloom's loadgen --tls-ca, 100 connections, 1 message in flight each,
#       every echoed byte checked (any error fails the run); msgs/s
#   tls-https-p16-256c   http example vs tokio-http; wrk -t1 -c256 with
#       examples/http/pipeline.lua, 16 requests deep; requests/s
#   tls-handshakes   the same servers; wrk -t1 -c32 -H 'Connection: close':
#       every request is a new connection with a full handshake (wrk does not
#       resume sessions); handshakes/s. Also rustls's own in-memory rate on
#       one core (bin tls-handshakes-mem: server-side CPU time only), the
#       reference for netloom's handshakes per server CPU second.
#
# Besides the rates, the server's CPU time (user + system, from
# /proc/PID/stat) over the measured window gives its CPU per message,
# request or handshake: the figure the ratios compare.
#
# Settings: DURATION [5] WARMUP [1] RUNS [3] QUICK [0] SCENARIOS [all]
# SERVER_CPU [0] CLIENT_CPU [1] BUILD [1] OUT [bench/results]
# REPORT_NAME [latest | quick]. Writes OUT/tls-REPORT_NAME.md; logs in
# OUT/logs-tls-STAMP/. Exit status 1 if any run failed.
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
# The TLS examples have a target directory of their own, so the plain
# benchmarks keep running binaries built without the feature.
TLS_TARGET="$TARGET/tls"
QUICK=${QUICK:-0}
if [ "$QUICK" != 0 ]; then
    DURATION=${DURATION:-1} WARMUP=${WARMUP:-0.5} RUNS=${RUNS:-1}
fi
DURATION=${DURATION:-5} WARMUP=${WARMUP:-1} RUNS=${RUNS:-3}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
OUT=${OUT:-$ROOT/bench/results}
REPORT_NAME=${REPORT_NAME:-$([ "$QUICK" != 0 ] && echo quick || echo latest)}
ALL="tls-echo-64B-100c tls-echo-16KiB-100c tls-https-p16-256c tls-handshakes"
log() { echo "tls.sh: $*" >&2; }

wanted=()
for name in ${SCENARIOS:-all}; do
    for sc in $ALL; do
        if [ "$name" = all ] || [ "$name" = tls ] || [[ "$sc" == "$name"* ]]; then
            [[ " ${wanted[*]} " == *" $sc "* ]] || wanted+=("$sc")
        fi
    done
done
[ ${#wanted[@]} -gt 0 ] || { log "no TLS scenario in SCENARIOS=${SCENARIOS:-}; known: $ALL"; exit 2; }
for tool in taskset openssl wrk; do
    command -v $tool >/dev/null || { log "$tool is missing (.ci/install-tools installs it)"; exit 1; }
done

if [ "${BUILD:-1}" != 0 ]; then
    log "building the tokio peers and netloom's examples with --features tls"
    cargo build --release --quiet --manifest-path "$ROOT/bench/Cargo.toml" --target-dir "$TARGET" \
        --bin tokio-echo --bin tokio-http --bin tls-handshakes-mem
    (cd "$ROOT" && cargo build --release --quiet --features tls --target-dir "$TLS_TARGET" \
        --example echo --example http --example loadgen)
fi

STAMP=$(date -u '+%Y%m%d-%H%M%S')
LOGS="$OUT/logs-tls-$STAMP"
mkdir -p "$LOGS"
CERT="$LOGS/cert.pem" KEY="$LOGS/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$KEY" -out "$CERT" 2>/dev/null

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local port
    while :; do
        # Below the ephemeral range, where clients' ports cannot collide.
        port=$((20000 + RANDOM % 12000))
        listening "$port" || { echo "$port"; return; }
    done
}

# server_command SERVER KIND PORT
server_command() {
    local tls=(--tls-cert "$CERT" --tls-key "$KEY")
    case "$1/$2" in
        netloom/echo) echo "$TLS_TARGET/release/examples/echo --addr tcp://127.0.0.1:$3 --loops 1 ${tls[*]}" ;;
        netloom/http) echo "$TLS_TARGET/release/examples/http --addr tcp://127.0.0.1:$3 --loops 1 ${tls[*]}" ;;
        tokio/echo) echo "$TARGET/release/tokio-echo --addr 127.0.0.1:$3 --threads 0 ${tls[*]}" ;;
        tokio/http) echo "$TARGET/release/tokio-http --addr 127.0.0.1:$3 --threads 0 ${tls[*]}" ;;
    esac
}

# load SCENARIO PORT LOG: prints the rate, or fails.
load() {
    local sc=$1 port=$2 out=$3 size rate
    case "$sc" in
        tls-echo-*)
            size=64
            [ "$sc" = tls-echo-16KiB-100c ] && size=16384
            taskset -c "$CLIENT_CPU" "$TLS_TARGET/release/examples/loadgen" \
                --addr "tcp://127.0.0.1:$port" --tls-ca "$CERT" --conns 100 --size "$size" \
                --pipeline 1 --duration "$DURATION" --warmup "$WARMUP" --loops 1 >"$out" 2>&1 || return 1
            grep -q '"errors":0,' "$out" || return 1
            grep -o '"msgs_per_s":[0-9.]*' "$out" | cut -d: -f2
            ;;
        tls-https-p16-256c)
            taskset -c "$CLIENT_CPU" wrk -t1 -c256 -d"${DURATION}s" -s "$ROOT/examples/http/pipeline.lua" \
                "https://127.0.0.1:$port/plaintext" -- 16 >"$out" 2>&1 || return 1
            wrk_rate "$out"
            ;;
        tls-handshakes)
            taskset -c "$CLIENT_CPU" wrk -t1 -c32 -d"${DURATION}s" -H 'Connection: close' \
                "https://127.0.0.1:$port/plaintext" >"$out" 2>&1 || return 1
            wrk_rate "$out"
            ;;
    esac
}

# ratio A B: A ÷ B to two places, or - when either is missing.
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN {if (a > 0 && b > 0) printf "%.2f", a / b; else print "-"}'; }

# The requests/s of a wrk report without errors or non-2xx answers.
wrk_rate() {
    ! grep -q -e 'Non-2xx' -e 'Socket errors: connect [1-9]' -e 'read [1-9]' -e 'write [1-9]' "$1" || return 1
    awk '/^Requests\/sec:/ {print $2}' "$1"
}

# cpu_seconds PID: the process's user + system time so far.
TICKS=$(getconf CLK_TCK)
cpu_seconds() { awk -v hz="$TICKS" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

status=0
table="| scenario | netloom /s | tokio-rustls /s | rate netloom ÷ tokio | netloom CPU µs each | tokio-rustls CPU µs each | CPU netloom ÷ tokio |\n|---|--:|--:|--:|--:|--:|--:|\n"
for sc in "${wanted[@]}"; do
    kind=echo
    [[ "$sc" == tls-echo-* ]] || kind=http
    declare -A rates=() costs=()
    for run in $(seq 1 "$RUNS"); do
        for server in netloom tokio; do
            stem="$LOGS/$sc-$server-$run"
            # A port taken meanwhile ends the server at once: try another.
            for _ in 1 2 3 4 5; do
                port=$(free_port)
                # shellcheck disable=SC2046
                taskset -c "$SERVER_CPU" $(server_command $server $kind "$port") >"$stem.server.log" 2>&1 &
                pid=$!
                for _ in $(seq 1 500); do
                    listening "$port" && break
                    kill -0 "$pid" 2>/dev/null || break
                    sleep 0.02
                done
                kill -0 "$pid" 2>/dev/null && break
            done
            # The load runs in the background so that the server's CPU time
            # is read when its measured window starts (after the warm-up).
            load "$sc" "$port" "$stem.load.log" >"$stem.rate" &
            loader=$!
            [[ "$sc" == tls-echo-* ]] && sleep "$WARMUP"
            cpu_start=$(cpu_seconds "$pid")
            if wait "$loader" && rate=$(cat "$stem.rate") && [ -n "$rate" ]; then
                cost=$(awk -v a="$cpu_start" -v b="$(cpu_seconds "$pid")" -v r="$rate" -v d="$DURATION" \
                    'BEGIN {printf "%.2f", (b - a) * 1e6 / (r * d)}')
                rates[$server]+="$rate "
                costs[$server]+="$cost "
                log "$sc $server run $run: $rate/s, $cost µs of server CPU each"
            else
                log "$sc $server run $run FAILED: see $stem.load.log"
                status=1
            fi
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done
    done
    ours=$(echo ${rates[netloom]:-} | tr ' ' '\n' | median)
    theirs=$(echo ${rates[tokio]:-} | tr ' ' '\n' | median)
    our_cost=$(echo ${costs[netloom]:-} | tr ' ' '\n' | median)
    their_cost=$(echo ${costs[tokio]:-} | tr ' ' '\n' | median)
    table+="| $sc | ${ours:--} | ${theirs:--} | $(ratio "$ours" "$theirs") | ${our_cost:--} | ${their_cost:--} | $(ratio "$our_cost" "$their_cost") |\n"
    if [ "$sc" = tls-handshakes ]; then
        reference=$(for run in $(seq 1 "$RUNS"); do
            taskset -c "$SERVER_CPU" "$TARGET/release/tls-handshakes-mem" --tls-cert "$CERT" --tls-key "$KEY" \
                --duration "$DURATION" | grep -o '"server_handshakes_per_s":[0-9.]*' | cut -d: -f2
        done | median)
        ours_per_cpu=$(awk -v c="${our_cost:-0}" 'BEGIN {if (c > 0) printf "%.0f", 1e6 / c}')
        table+="| handshakes per server CPU second: netloom ÷ rustls in memory ($reference/s) | $ours_per_cpu | | $(ratio "$ours_per_cpu" "$reference") | | | |\n"
    fi
    unset rates costs
done

report="$OUT/tls-$REPORT_NAME.md"
{
    echo "TLS scenarios ($(date -u '+%Y-%m-%d %H:%M UTC'), $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)):"
    echo "DURATION=$DURATION RUNS=$RUNS, medians of msgs/s (echo) or requests/s (https, handshakes)"
    echo "and of the server's CPU time per message, request or handshake;"
    echo "server on cpu $SERVER_CPU (1 loop / current-thread runtime), load on cpu $CLIENT_CPU."
    echo
    printf "%b" "$table"
} >"$report"
cat "$report"
exit $status
