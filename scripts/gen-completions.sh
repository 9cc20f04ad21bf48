#!/usr/bin/env bash
# Regenerates completions/ from the built binary (the scripts are what
# `kvctl completion SHELL` prints; a test fails when they differ).
# Usage: scripts/gen-completions.sh [KVCTL_BINARY]   (default: build/kvctl)
set -euo pipefail
cd "$(dirname "$0")/.."
kvctl=${1:-build/kvctl}
"$kvctl" completion bash > completions/kvctl.bash
"$kvctl" completion zsh > completions/_kvctl
"$kvctl" completion fish > completions/kvctl.fish
echo "completions/ regenerated from $kvctl"
