#!/usr/bin/env bash
# UDP echo: netloom (udp_batch 32, and 1 = one recvmsg/sendmsg per datagram)
# against tokio's UDP echo, one core each (server on SERVER_CPU, the load
# generator on CLIENT_CPU), 64 B and 1,400 B datagrams, RUNS alternating rounds.
#
#   bench/udp/run.sh                       # from the repository root
#   RUNS=5 DURATION=5 SIZES="64 1400" bench/udp/run.sh
#
# Before each run it waits until the machine is idle (QUIET_MAX [10] % busy,
# at most QUIET_WAIT [300] s). Each line: server, datagrams/s echoed, server CPU share and server CPU time
# per echoed datagram (srv-us/op; the generator busy-polls its own core, so
# compare servers by srv-us/op as well as by rate).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SIZES=${SIZES:-"64 1400"}
FLOWS=${FLOWS:-1}
WINDOW=${WINDOW:-64}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-19700}
NETLOOM_TARGET=${NETLOOM_TARGET:-$ROOT/target}
BENCH_TARGET=${BENCH_TARGET:-$ROOT/bench/udp/target}

if [ "${BUILD:-1}" = 1 ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR=$NETLOOM_TARGET cargo build --release --example echo)
  (cd "$ROOT/bench/udp" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release)
fi
ECHO=$NETLOOM_TARGET/release/examples/echo
TOKIO=$BENCH_TARGET/release/tokio-udp-echo
LOAD=$BENCH_TARGET/release/udp-load

# Busy share (%) of all cores over one second.
busy() {
  read -r _ u n s i w x y z _ < /proc/stat; local t0=$((u+n+s+i+w+x+y+z)) i0=$((i+w))
  sleep 1
  read -r _ u n s i w x y z _ < /proc/stat; local t1=$((u+n+s+i+w+x+y+z)) i1=$((i+w))
  echo $(( 100 - 100 * (i1 - i0) / (t1 - t0) ))
}

# Waits (up to QUIET_WAIT s) until the machine is mostly idle: another
# benchmark on the same cores would skew every figure.
wait_quiet() {
  local waited=0 b
  while b=$(busy); [ "$b" -gt "${QUIET_MAX:-10}" ]; do
    waited=$((waited + 1))
    if [ $waited -ge "${QUIET_WAIT:-300}" ]; then
      echo "warning: machine still ${b}% busy, measuring anyway" >&2
      return
    fi
  done
}

server_cmd() { # name port
  case $1 in
    netloom-b32) echo "$ECHO --addr udp://127.0.0.1:$2 --loops 1 --udp-batch 32" ;;
    netloom-b1) echo "$ECHO --addr udp://127.0.0.1:$2 --loops 1 --udp-batch 1" ;;
    tokio) echo "$TOKIO --addr 127.0.0.1:$2" ;;
  esac
}

for size in $SIZES; do
  for run in $(seq "$RUNS"); do
    for server in netloom-b32 netloom-b1 tokio; do
      wait_quiet
      PORT=$((PORT + 1))
      taskset -c "$SERVER_CPU" $(server_cmd $server $PORT) >/dev/null &
      pid=$!
      sleep 0.3
      result=$(taskset -c "$CLIENT_CPU" "$LOAD" --addr 127.0.0.1:$PORT --size "$size" \
        --flows "$FLOWS" --window "$WINDOW" --duration "$DURATION" --warmup "$WARMUP" \
        --server-pid $pid)
      kill $pid; wait $pid 2>/dev/null || true
      echo "run=$run server=$server $result"
    done
  done
done
