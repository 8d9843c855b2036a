#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds, and runs the whole suite
# under ctest. With --sanitize, builds in build-sanitize/ with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs the same suite there.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-sanitize
  scripts/build.sh "$build_dir" -DIRAEWATCH_SANITIZE=ON -DIRAEWATCH_BENCH=OFF
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  build_dir=build
  scripts/build.sh "$build_dir"
fi
cd "$build_dir"
ctest --output-on-failure --timeout 600
