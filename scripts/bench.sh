#!/usr/bin/env bash
"$(dirname "$0")/install-deps.sh" || exit
# Builds iraewatch in Release (build-release/, tests off) and runs the ingest benchmark against it:
# throughput over pipelining connections, then ack latency at fixed offered rates. Extra arguments
# go to the benchmark, e.g. `scripts/bench.sh --sync normal` or `--records 50000 --rate 2000`.
# Exit status: the benchmark's (1 when any reply, count or shutdown was wrong; 2 on setup errors).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-release"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIRAEWATCH_TESTS=OFF -DIRAEWATCH_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target iraewatch ingest_bench

exec "$build/bench/ingest_bench" --binary "$build/src/iraewatch" "$@"
