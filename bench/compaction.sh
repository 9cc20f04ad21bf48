#!/usr/bin/env bash
# Compaction figures for the README/issue: the log size after OVERWRITES
# random overwrites of 10k keys, before and after `kvctl compact`, and PUT
# latency (fsync = always, wrk -c64) with and without a compaction running,
# alternated ROUNDS times so the machine's noise hits both alike.
#   bench/compaction.sh [OVERWRITES] [ROUNDS]
# Needs wrk (Debian package wrk). Everything on 127.0.0.1; the server is
# stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
overwrites=${1:-1000000}
rounds=${2:-3}
kvctl=build/kvctl
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 2; }
[ -x "$kvctl" ] || { echo "build first: scripts/test.sh or scripts/run.sh" >&2; exit 2; }

work=$(mktemp -d /tmp/kvctl-bench-compaction-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
"$kvctl" serve --data-dir "$work/data" --listen "$addr" --storage-compact-dead-percent 0 \
  --log-level warn 2>"$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://$addr/readyz" >/dev/null && break; sleep 0.1; done

echo "writing $overwrites overwrites of 10k keys (16-byte keys, 100-byte values)..."
start=$(date +%s)
while :; do
  done_writes=$(curl -s "http://$addr/metrics" | awk '/^kvctl_store_puts_total /{print $2}')
  [ "${done_writes:-0}" -ge "$overwrites" ] && break
  KEYS=10000 wrk -t2 -c64 -d5s -s bench/put_random.lua "http://$addr" >/dev/null
done
echo "  $(curl -s "http://$addr/metrics" | awk '/^kvctl_store_puts_total /{print $2}') PUTs in $(( $(date +%s) - start )) s"
before=$(du -sb "$work/data" | cut -f1)
"$kvctl" compact --addr "$addr"
after=$(du -sb "$work/data" | cut -f1)
echo "data dir: $before bytes before, $after after compaction"

p99() { KEYS=10000 wrk -t2 -c64 -d10s --latency -s bench/put_random.lua "http://$addr" |
        awk '/^ +99%/{print $2} /Requests\/sec/{print "rps=" $2}' | paste -sd' '; }
for r in $(seq "$rounds"); do
  echo "round $r without compaction: $(p99)"
  ( while :; do "$kvctl" compact --addr "$addr" >/dev/null; done ) &
  loop=$!
  echo "round $r with compaction looping: $(p99)"
  kill $loop; wait $loop 2>/dev/null || true
  echo "  compactions so far: $(curl -s "http://$addr/metrics" | awk '/^kvctl_compactions_total /{print $2}')"
done
