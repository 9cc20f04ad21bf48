#!/usr/bin/env bash
# Builds kvctl and its tests (installing missing Debian packages) and runs the
# whole suite with ctest: unit tests, and end-to-end tests that start the
# real binary on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure --timeout 300 -j"$(nproc)" "$@"
