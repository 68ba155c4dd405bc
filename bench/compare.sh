#!/usr/bin/env bash
# Callback echo of two revisions side by side, with tokio and the epoll
# floor, in alternating rounds of the shared harness (../shared/bench):
#
#     bench/compare.sh BEFORE [AFTER]     # revisions; AFTER defaults to the work tree
#
# Builds examples/echo (release) of each revision in a scratch worktree under
# $BENCH_DIR, then runs ROUNDS rounds of bench.sh (each server pinned to
# cpu 0, the load generator to cpu 1) and prints the medians of the
# per-round ratios of server CPU per message (the process's own user+sys
# time, and the server core's busy time) and of msgs/s.
#
# Settings: ROUNDS [10], DURATION [3], SCENARIOS ["echo-64B-100c
# echo-4KB-100c echo-64B-1000c"], SERVERS ["tokio baseline"],
# BENCH_DIR [/tmp/netloom-compare], NETLOOM_BACKEND [epoll], BEFORE_ARGS and
# AFTER_ARGS (more flags for each echo, e.g. AFTER_ARGS="--backend io-uring"
# compares the backends of one revision).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=${1:?usage: bench/compare.sh BEFORE [AFTER]}
AFTER=${2:-}
HARNESS=$(realpath "$ROOT/../shared/bench")
export BENCH_DIR=${BENCH_DIR:-/tmp/netloom-compare}
export DURATION=${DURATION:-3} WARMUP=1 OTHER_MAX=100 RETRIES=0 QUIET_MAX=100
export SERVERS=${SERVERS:-"tokio baseline"}
export SCENARIOS=${SCENARIOS:-"echo-64B-100c echo-4KB-100c echo-64B-1000c"}
# netloom's backend (Backend::Auto picks io_uring where the kernel has it):
# epoll unless asked otherwise, so revisions from before the io_uring
# backend compare like for like.
export NETLOOM_BACKEND=${NETLOOM_BACKEND:-epoll}
mkdir -p "$BENCH_DIR/results"

build_echo() { # revision (empty: the work tree) -> path of its echo binary
    local dir=$ROOT
    if [ -n "$1" ]; then
        dir=$BENCH_DIR/tree-$(git -C "$ROOT" rev-parse --short "$1")
        [ -d "$dir" ] || git -C "$ROOT" worktree add -q --detach "$dir" "$1"
    fi
    (cd "$dir" && cargo build --release --quiet --example echo --target-dir "$BENCH_DIR/target-$(basename "$dir")")
    echo "$BENCH_DIR/target-$(basename "$dir")/release/examples/echo"
}
before_bin=$(build_echo "$BEFORE")
after_bin=$(build_echo "$AFTER")
export EXTRA_NAME=before EXTRA_ECHO_CMD="$before_bin --addr tcp://127.0.0.1:{PORT} --loops 1 ${BEFORE_ARGS:-}"
export EXTRA2_NAME=after EXTRA2_ECHO_CMD="$after_bin --addr tcp://127.0.0.1:{PORT} --loops 1 ${AFTER_ARGS:-}"

stamp=$(date +%Y%m%d-%H%M%S)
for r in $(seq 1 "${ROUNDS:-10}"); do
    # The harness builds its peers on the first round only.
    RESULTS=$BENCH_DIR/results/$stamp-$r.jsonl BUILD=$([ "$r" = 1 ] && echo 1 || echo 0) \
        "$HARNESS/bench.sh" >"$BENCH_DIR/results/$stamp-$r.txt" 2>&1 || true
    echo "compare.sh: round $r done" >&2
done

python3 - "$BENCH_DIR/results/$stamp" <<'PY'
import collections, glob, json, statistics, sys
rows = collections.defaultdict(dict)
for path in glob.glob(sys.argv[1] + "-*.jsonl"):
    for line in open(path):
        j = json.loads(line)
        raw = j["raw"]
        if j.get("errors") or not raw.get("msgs_per_s"):
            continue
        proc = raw["server_cpu_pct"] / 100 / raw["msgs_per_s"] * 1e6
        rows[(j["scenario"], path)][j["server"]] = (proc, j["server_core_us_per_op"], j["rate"])
pairs = [("after", "before"), ("after", "tokio"), ("before", "tokio"), ("after", "baseline")]
print("| scenario | ratio | CPU µs/msg (process) | CPU µs/msg (core) | msgs/s | rounds |")
print("|---|---|--:|--:|--:|--:|")
for scen in sorted({k[0] for k in rows}):
    for a, b in pairs:
        ks = [k for k in rows if k[0] == scen and a in rows[k] and b in rows[k]]
        if not ks:
            continue
        med = lambda i: statistics.median(rows[k][a][i] / rows[k][b][i] for k in ks)
        print(f"| {scen} | {a} ÷ {b} | {med(0):.3f} | {med(1):.3f} | {med(2):.3f} | {len(ks)} |")
PY
