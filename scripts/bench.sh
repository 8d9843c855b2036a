#!/usr/bin/env bash
# Builds iraewatch in Release (build-release/, tests off) and runs a benchmark:
#   scripts/bench.sh [ingest] [ARGS...]   NDJSON ingest over TCP into the durable store: throughput
#                                         over pipelining connections, then ack latency at fixed
#                                         offered rates (e.g. --sync normal, --rate 2000)
#   scripts/bench.sh engine [ARGS...]     the engine in-process with the shipped rules over 10,000
#                                         patients, then `iraewatch replay` of 1,000,000 records
#                                         (e.g. --abnormal 1.0 for the stress mix)
#   scripts/bench.sh mllp [ARGS...]       HL7 v2 ORU^R01 (5 OBX) over MLLP with durable ACKs:
#                                         messages/s, then ACK latency at fixed rates
#   scripts/bench.sh alert [ARGS...]      from a record's acknowledgement to its alert event on the
#                                         subscriber socket, at fixed offered rates (default 1000 and
#                                         5000 records/s for 10 s each; e.g. --rate 2000 --seconds 20)
#   scripts/bench.sh floor [--work-us N] [ARGS...]
#                                         the machine's floor: ingest_bench against bench/floor_server,
#                                         a minimal durable acknowledger (append, fdatasync, reply)
#                                         doing N microseconds of arithmetic per line (default 0)
# Exit status: the benchmark's (1 when a check failed; 2 on setup errors).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
build="$root/build-release"
which="ingest"
if [ "${1:-}" = "ingest" ] || [ "${1:-}" = "engine" ] || [ "${1:-}" = "alert" ] || [ "${1:-}" = "mllp" ] ||
  [ "${1:-}" = "floor" ]; then
  which="$1"
  shift
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIRAEWATCH_TESTS=OFF -DIRAEWATCH_BENCH=ON >/dev/null

if [ "$which" = "floor" ]; then
  work_us=0
  if [ "${1:-}" = "--work-us" ]; then
    work_us="${2:?--work-us needs a number of microseconds}"
    shift 2
  fi
  cmake --build "$build" -j2 --target floor_server ingest_bench
  FLOOR_WORK_US="$work_us" exec "$build/bench/ingest_bench" --binary "$build/bench/floor_server" "$@"
fi

cmake --build "$build" -j2 --target iraewatch "${which}_bench"
exec "$build/bench/${which}_bench" --binary "$build/src/iraewatch" "$@"
