#!/usr/bin/env bash
# Builds kvctl (installing missing Debian packages) and runs `kvctl serve` on
# the embedded file backend. Extra arguments go to `kvctl serve`, e.g.
#   scripts/run.sh --data-dir /var/tmp/kvctl --fsync interval
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build --target kvctl -j"$(nproc)"
exec build/kvctl serve "$@"
