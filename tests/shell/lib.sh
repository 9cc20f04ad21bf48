# shellcheck shell=bash
# Helpers for the shell tests: counting checks and failures, a temp dir
# removed on exit, and a kvctl server on a free loopback port that is
# talked to with bash's /dev/tcp (no curl needed) and stopped by its PID.
# Source it; callers set `set -euo pipefail`.

failures=0
checks=0
# fail MESSAGE: records a failed check (the test goes on, to report them all).
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { checks=$((checks + 1)); }
# finish NAME: the summary line; the test's exit status.
finish() {
  echo "$1: $checks checks, $failures failed"
  [ "$failures" -eq 0 ]
}

# require_tools TOOL...: stops the test if one is missing.
require_tools() {
  local tool
  for tool; do
    command -v "$tool" > /dev/null || { echo "FAIL: $tool is not installed (scripts/deps.sh test installs it)"; exit 1; }
  done
}

# Sets `tmp` to a new directory, removed (after stopping any server) on exit.
make_tmp() {
  tmp=$(mktemp -d)
  trap 'stop_server || true; rm -rf "$tmp"' EXIT
}

# start_server LOG COMMAND...: runs COMMAND (a `kvctl serve` that listens on
# 127.0.0.1:0) in the background with stderr to LOG, then waits (at most
# 20 s) for its "listening addr=127.0.0.1:PORT" line. Sets SERVER_PID and
# SERVER_PORT; returns 1 (with the log shown) if it exits or never listens.
start_server() {
  local log=$1
  shift
  "$@" > /dev/null 2> "$log" &
  SERVER_PID=$!
  SERVER_PORT=""
  local i
  for ((i = 0; i < 200; i++)); do
    SERVER_PORT=$(sed -n 's/.*listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" 2> /dev/null | head -1)
    [ -n "$SERVER_PORT" ] && return 0
    if ! kill -0 "$SERVER_PID" 2> /dev/null; then
      echo "server exited before listening:"; cat "$log"
      return 1
    fi
    sleep 0.1
  done
  echo "server did not listen within 20 s:"; cat "$log"
  return 1
}

# http_status PORT PATH: the status code of GET PATH on 127.0.0.1:PORT ("" if
# the connection fails).
http_status() {
  local reply
  reply=$(timeout 5 bash -c '
    exec 3<> "/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3
    head -1 <&3' _ "$1" "$2" 2> /dev/null) || true
  sed -n 's/^HTTP\/1\.[01] \([0-9]*\).*/\1/p' <<< "$reply"
}

# wait_ready PORT: waits (at most 20 s) for GET /readyz to answer 200.
wait_ready() {
  local i
  for ((i = 0; i < 200; i++)); do
    [ "$(http_status "$1" /readyz)" = 200 ] && return 0
    sleep 0.1
  done
  echo "GET /readyz on port $1 never answered 200"
  return 1
}

# stop_server: SIGTERM to SERVER_PID, wait (at most 20 s, then SIGKILL);
# returns the server's exit code.
stop_server() {
  [ -n "${SERVER_PID:-}" ] || return 0
  kill -TERM "$SERVER_PID" 2> /dev/null || true
  local i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$SERVER_PID" 2> /dev/null || break
    sleep 0.1
  done
  kill -0 "$SERVER_PID" 2> /dev/null && kill -KILL "$SERVER_PID"
  local code=0
  wait "$SERVER_PID" || code=$?
  SERVER_PID=""
  return "$code"
}
