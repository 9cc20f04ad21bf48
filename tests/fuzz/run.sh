#!/usr/bin/env bash
# Runs the log fuzzer for a bounded time from fresh seeds:
#   tests/fuzz/run.sh BINARY SECONDS [extra libFuzzer flags]
# Exit status: 0 when no input crashed, leaked or hung; libFuzzer's otherwise
# (the crashing input is saved as crash-* in the current directory).
set -euo pipefail
binary=$1
seconds=$2
shift 2
corpus=$(mktemp -d /tmp/kvctl-fuzz-corpus-XXXXXX)
trap 'rm -rf "$corpus"' EXIT
KVCTL_FUZZ_SEEDS=$corpus "$binary" "$corpus" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 "$@"
