#!/usr/bin/env bash
# netloom's benchmark suite, one command:
#
#     bench/run.sh                       # full run: ~8 min after the build (netloom,
#                                        # netloom-async, tokio; ~11 with Go);
#                                        # writes bench/results/latest.{md,svg,jsonl}
#     QUICK=1 bench/run.sh               # smoke test, ~50 s after the build; writes quick.*
#     SCENARIOS="echo-64B-100c resp" RUNS=5 bench/run.sh
#
# Builds netloom's examples (echo, http, redis on the callback engine;
# echo_async, http_async on the async front-end `netloom::rt`: each one that
# exists) and the peers in bench/ (tokio echo / HTTP / RESP servers, the load
# generator, the suite runner; Go's `net` peers too when a Go toolchain is
# installed), then runs every scenario against every server: a fresh server
# pinned to SERVER_CPU with 1 loop / 1 worker, the load generator pinned to
# CLIENT_CPU. Servers alternate within each run; the table shows medians over
# the runs, the medians of the per-run netloom/peer ratios, netloom's and
# netloom-uring's ratios to the floor, and the async front-end's ratios to
# the callback servers and to tokio.
#
# Servers (SERVERS): netloom = the callback examples; netloom-uring = the
# same on the io_uring backend (`--backend io-uring`); netloom-async =
# echo_async (echo, idle-conns) and http_async (http; given the callback
# http's 10 s idle timeout), no RESP server; tokio; go; floor = the epoll
# floor, bench/src/bin/floor-echo.rs (one mio thread that only reads and
# writes back; the echo scenarios under load only).
#
# Settings (environment variables, defaults in brackets):
#   DURATION [5]      measured seconds per run        WARMUP [1]  unmeasured seconds before
#   RUNS [3]          runs of each (scenario, server)
#   SCENARIOS [all]   names, or prefixes such as `echo`, `http`, `resp`, `idle`:
#                     echo-64B-100c echo-4KiB-100c echo-64B-1000c echo-4KiB-1000c
#                     http-p16-256c resp-get-p16-50c resp-set-p16-50c idle-conns
#                     tls-echo-64B-100c tls-echo-16KiB-100c tls-https-p16-256c
#                     tls-handshakes (`tls`: all four; run by bench/tls.sh, see its header)
#   SERVERS ["netloom netloom-uring netloom-async tokio go floor"]
#                     (go is skipped with a note without a Go toolchain)
#   SYSCALLS [0]      1 = count each server's system calls over the measured
#                     window with `perf stat -e raw_syscalls:sys_enter` (strace
#                     -c -f, far slower, with a note when perf is refused;
#                     `strace` forces it) and add a syscalls/msg column. The
#                     tracepoint makes every system call dearer (~0.2 µs here),
#                     so CPU figures of such a run run high: compare them within it.
#   IDLE_STEPS [1000,9000]   idle connections opened, in steps, for idle-conns
#   QUICK [0]         1 = DURATION=1 WARMUP=0.5 RUNS=1 IDLE_STEPS=200,1000 unless
#                     set, and write quick.* instead of latest.*
#   SERVER_CPU [0]  CLIENT_CPU [1]  TOKIO_THREADS [0 = current-thread runtime]
#   LOADGEN_THREADS [1]   BUILD [1] (0 = use the binaries already built)
#   NETLOOM_BACKEND [epoll]   netloom's backend: epoll | io-uring | auto
#   OUT [bench/results]   REPORT_NAME [latest | quick]
#   CARGO_TARGET_DIR [target/ of the repository]: shared by netloom and bench/
#
# Results: OUT/REPORT_NAME.md (table), .svg (chart), .jsonl (raw records),
# and (full runs named latest) the results section of README.md between its
# bench markers;
# every run's raw records and server / loadgen logs stay in
# OUT/runs-STAMP.jsonl and OUT/logs-STAMP/ (git-ignored).
# Exit status 1 if any run failed or a reply did not verify.
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Absolute, because the two builds below run from different directories.
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
BUILD=${BUILD:-1}
log() { echo "run.sh: $*" >&2; }

command -v taskset >/dev/null || { log "taskset is missing (apt-get install util-linux)"; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
    log "WARNING: fewer than 2 cores: server and load generator share one; numbers will not compare"
fi

# netloom's servers are its examples; one not in this checkout is skipped
# (the suite is told which exist, so a stale binary is never used).
examples=()
NETLOOM_EXAMPLES=""
for ex in echo http redis echo_async http_async; do
    if [ -f "$ROOT/examples/$ex.rs" ] || [ -f "$ROOT/examples/$ex/main.rs" ]; then
        examples+=(--example "$ex")
        NETLOOM_EXAMPLES="$NETLOOM_EXAMPLES $ex"
    else
        log "note: netloom's example $ex does not exist yet; its server is skipped where it is needed"
    fi
done
export NETLOOM_EXAMPLES

if [ "$BUILD" != 0 ]; then
    log "building the bench crate (peers, loadgen, suite)"
    cargo build --release --quiet --manifest-path "$ROOT/bench/Cargo.toml" --target-dir "$TARGET" --bins
    log "building netloom's examples:$NETLOOM_EXAMPLES"
    (cd "$ROOT" && cargo build --release --quiet --target-dir "$TARGET" "${examples[@]}")
fi

find_go() {
    if command -v go >/dev/null; then command -v go; return; fi
    local g
    for g in /usr/lib/go-*/bin/go /usr/local/go/bin/go; do
        if [ -x "$g" ]; then echo "$g"; return; fi
    done
    return 1
}
export GO_BIN="" BENCH_GO=""
if GO=$(find_go); then
    GO_BIN="$TARGET/go-peers"
    BENCH_GO=$("$GO" version | awk '{print $3}')
    if [ "$BUILD" != 0 ]; then
        log "building the Go peers with $BENCH_GO"
        mkdir -p "$GO_BIN"
        for peer in echo http resp; do
            (cd "$ROOT/bench/go/$peer" && GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local \
                GOCACHE="${GOCACHE:-$TARGET/go-cache}" "$GO" build -trimpath -o "$GO_BIN/go-$peer" .)
        done
    fi
else
    log "note: no Go toolchain found: the Go net peers are skipped (apt-get install golang-go adds them)"
fi

QUICK=${QUICK:-0}
knobs=""
for k in QUICK DURATION WARMUP RUNS SCENARIOS SERVERS IDLE_STEPS TOKIO_THREADS SYSCALLS; do
    v=${!k:-}
    if [ -z "$v" ] || [ "$v" = 0 ]; then continue; fi
    if [[ "$v" == *" "* ]]; then knobs+="$k=\"$v\" "; else knobs+="$k=$v "; fi
done
export BENCH_COMMAND="${knobs}bench/run.sh"
export BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
export BENCH_STAMP=$(date -u '+%Y%m%d-%H%M%S')
export BENCH_COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$ROOT" && git status --porcelain -- src examples Cargo.toml 2>/dev/null)" ]; then
    BENCH_COMMIT="$BENCH_COMMIT (modified)"
fi
export BENCH_RUSTC=$(rustc --version | awk '{print $1, $2}')
export QUICK
# A full run under the default name also refreshes the README's results.
export BENCH_README="$ROOT/README.md"

# netloom's servers wait on epoll unless NETLOOM_BACKEND says otherwise
# (Backend::Auto would pick io_uring where the kernel has it): the figures
# stay comparable with earlier runs.
export NETLOOM_BACKEND=${NETLOOM_BACKEND:-epoll}

case "${SYSCALLS:-0}" in
    0 | off) ;;
    strace) command -v strace >/dev/null || log "SYSCALLS=strace: strace is missing (apt-get install strace)" ;;
    *) command -v perf >/dev/null ||
        log "SYSCALLS=$SYSCALLS: perf is missing (apt-get install linux-perf): strace counts instead, slowly" ;;
esac

# The idle-connection scenario holds 9,000 sockets on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Scenarios named tls* run in bench/tls.sh (netloom's examples built with
# --features tls against tokio-rustls peers); the others in the suite.
plain_scenarios="" tls_scenarios=""
for name in ${SCENARIOS:-all}; do
    case "$name" in
        all) plain_scenarios+="all " tls_scenarios+="all " ;;
        tls*) tls_scenarios+="$name " ;;
        *) plain_scenarios+="$name " ;;
    esac
done
status=0
if [ -n "$plain_scenarios" ]; then
    SCENARIOS="${plain_scenarios% }" "$TARGET/release/suite" || status=1
fi
if [ -n "$tls_scenarios" ]; then
    SCENARIOS="${tls_scenarios% }" BUILD="$BUILD" OUT="${OUT:-$ROOT/bench/results}" \
        "$ROOT/bench/tls.sh" || status=1
fi
exit $status
