#!/usr/bin/env bash
# The side-by-side benchmark suite: kvctl and its peers on this machine, one
# after another, with the same load shape, and one table of ratios against
# the targets of the performance issue (README "Benchmarks").
#
#   bench/run.sh                 # 10 s per measurement, 3 runs each, medians
#   bench/run.sh --quick         # 3 s, 1 run, 200k keys for recovery: a check, not a result
#   bench/run.sh --duration 5 --runs 3 --recovery-keys 1000000 --kvctl path/to/kvctl
#   bench/run.sh --only recovery --baseline old/kvctl   # recovery and memory, two builds side by side
#   bench/run.sh --only watch            # PUT load without and with 1,000 watchers, the event delay,
#                                        # and the loopback floor under it (build/loopback_floor)
#   bench/run.sh --only watch --watchers 200 --probe-rate 20
#   bench/run.sh --only lease            # 1,000 leases ending within a second under the 64-client PUT
#                                        # load (kvctl bench --lease-expiry): delay from deadline to delete event
#   bench/run.sh --only lease --leases 1000 --lease-ttl 2
#   bench/run.sh --only etcd             # etcd's put and range through its JSON gateway, and the same
#                                        # wrk script (bench/wrk_etcd.lua) against kvctl's etcd face
#
# Installs what it needs from Debian (nginx, redis, etcd, wrk, jq), builds
# kvctl and loopback_floor if build/ lacks them, runs every server on
# 127.0.0.1 in a temp dir on the disk, and stops each process it started by
# its PID.
# Load shape: wrk -t2 -c64 (redis-benchmark -c 64 --threads 2), 10k keys of
# 16 bytes, 100-byte values. --only txn: 3-key transactions/s against PUTs/s, and etcd's txn.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

DURATION=10
RUNS=3
RECOVERY_KEYS=1000000
KEYS=10000
KVCTL=$REPO/build/kvctl
FLOOR=$REPO/build/loopback_floor  # bench/loopback_floor.cpp: the kernel's floor under the watch delay
BASELINE=""  # another kvctl build to time recovery and memory against, on the same data
ONLY=all     # or a comma-separated list of: nginx redis etcd kvctl txn recovery watch lease
WATCHERS=1000
PROBE_RATE=2  # the watchers' probe PUTs a second: each is an event on every watcher
LEASES=1000   # --only lease: leases granted over one second
LEASE_TTL=2   # their TTL, seconds
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; RUNS=1; RECOVERY_KEYS=200000 ;;
    --duration) DURATION=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --recovery-keys) RECOVERY_KEYS=$2; shift ;;
    --kvctl) KVCTL=$(realpath "$2"); shift ;;  # measure another build
    --baseline) BASELINE=$(realpath "$2"); shift ;;
    --only) ONLY=$2; shift ;;
    --watchers) WATCHERS=$2; shift ;;
    --probe-rate) PROBE_RATE=$2; shift ;;
    --leases) LEASES=$2; shift ;;
    --lease-ttl) LEASE_TTL=$2; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# --- what it needs ---------------------------------------------------------
wanted() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }
need=()
for pair in nginx:nginx-light redis-server:redis-server redis-benchmark:redis-tools etcd:etcd-server \
            wrk:wrk jq:jq curl:curl; do
  command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing from Debian: ${need[*]}" >&2
  sudo=(); [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$KVCTL" ]; then
  scripts/deps.sh build
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target kvctl >&2
fi
if [ ! -x "$FLOOR" ] && wanted watch; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build --target loopback_floor >&2
fi

WORK=$(mktemp -d /var/tmp/kvctl-suite-XXXXXX)  # on the disk, not tmpfs: fsync must mean something
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# --- processes -------------------------------------------------------------
free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port near $1" >&2; exit 3
}

start_bg() {  # logfile, command...: starts it, sets PID
  local logfile=$1; shift
  "$@" >"$logfile" 2>&1 &
  PID=$!
  PIDS+=("$PID")
}

stop_pid() {  # TERM, wait up to 10 s, then KILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  PIDS=("${kept[@]+"${kept[@]}"}")
}

wait_http() {  # url: until it answers (any status), at most 30 s
  local i
  # Every 20 ms: the recovery times measured this way are about half a second.
  for i in $(seq 1500); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.02
  done
  echo "no answer from $1" >&2; exit 3
}

# --- measuring -------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }

wrk_rps() {  # wrk args...: requests/s of one run
  wrk "$@" | awk '/^Requests\/sec:/ {print $2}'
}

repeat() {  # command...: the median of RUNS runs of a command printing one number
  local i
  for i in $(seq "$RUNS"); do "$@"; done | median
}

declare -A R  # result name -> median

kvbench_rps() {  # port: GETs/s that kvctl bench reaches
  "$KVCTL" bench --addr "127.0.0.1:$1" --clients 64 --read-ratio 1 --no-fill --duration "${DURATION}s" -o json \
    | jq -r '.throughput_rps'
}

kvctl_fill() {  # port, keys: PUT every key once with kvctl bench
  "$KVCTL" bench --addr "127.0.0.1:$1" --keys "$2" --requests 1 --read-ratio 1 --clients 64 -o json >/dev/null
}

measure_disk_fsync() {
  local out secs n=2000
  out=$(dd if=/dev/zero of="$WORK/fsync.test" bs=4k count=$n oflag=dsync 2>&1 | tail -1)
  rm -f "$WORK/fsync.test"
  secs=$(echo "$out" | sed -E 's/.*copied, ([0-9.]+) s.*/\1/')
  awk -v s="$secs" -v n=$n 'BEGIN {printf "%.4f\n", s / n * 1000}'
}

measure_nginx() {  # workers
  local dir=$WORK/nginx$1 port
  port=$(free_port 17100)
  mkdir -p "$dir/html"
  head -c 100 /dev/zero | tr '\0' 'v' >"$dir/html/value"
  cat >"$dir/nginx.conf" <<EOF
worker_processes $1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$port backlog=4096;
    root $dir/html;
    location /v1/kv/ { return 200 "$(cat "$dir/html/value")"; }
  }
}
EOF
  start_bg "$dir/out.log" "$NGINX" -c "$dir/nginx.conf" -p "$dir"
  local pid=$PID
  wait_http "http://127.0.0.1:$port/value"
  R[nginx$1]=$(repeat wrk_rps -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$port/value")
  if [ "$1" = 1 ]; then
    # The load generator's own ceiling: kvctl bench and wrk against the same
    # nginx answer (GET /v1/kv/KEY -> 100 bytes).
    R[client_wrk]=$(repeat wrk_rps -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$port/v1/kv/k000000000000001")
    R[client_kvbench]=$(repeat kvbench_rps "$port")
  fi
  stop_pid "$pid"
}

redis_run() {  # port, test, count: requests/s from redis-benchmark
  redis-benchmark -h 127.0.0.1 -p "$1" -c 64 --threads 2 -d 100 -r "$KEYS" -t "$2" -n "$3" -q --csv \
    | awk -F'","' -v t="${2^^}" '$1 == "\"" t {print $2}'
}

redis_rps() {  # port, test: requests/s over about DURATION seconds
  # redis-benchmark runs by count, not time: a short run sets the count.
  local rate n
  rate=$(redis_run "$1" "$2" 20000)
  n=$(awk -v r="$rate" -v d="$DURATION" 'BEGIN {n = int(r * d); print (n < 20000 ? 20000 : n)}')
  redis_run "$1" "$2" "$n"
}

measure_redis() {  # name, fsync mode (always|everysec|off)
  local name=$1 mode=$2 dir=$WORK/redis-$2 port
  port=$(free_port 17200)
  mkdir -p "$dir"
  local persist=(--appendonly yes --appendfsync "$mode")
  [ "$mode" = off ] && persist=(--appendonly no)
  start_bg "$dir/redis.log" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" "${persist[@]}" \
    --protected-mode no --daemonize no
  local pid=$PID
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  R[redis_set_$name]=$(repeat redis_rps "$port" set)
  R[redis_get_$name]=$(repeat redis_rps "$port" get)
  stop_pid "$pid"
}

etcd_wrk() {  # port, mode: requests/s of wrk_etcd.lua
  ETCD_MODE=$2 KV_KEYS=$KEYS wrk_rps -t2 -c64 -d"${DURATION}s" -s bench/wrk_etcd.lua "http://127.0.0.1:$1"
}

start_etcd() {  # dir: a one-member etcd on it; sets PID and PORT
  local peer
  PORT=$(free_port 17300)
  peer=$(free_port $((PORT + 1)))
  start_bg "$1.log" etcd --name suite --data-dir "$1" \
    --listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "suite=http://127.0.0.1:$peer" --log-level error
  wait_http "http://127.0.0.1:$PORT/health"
}

# etcd's put and range through its JSON gateway, and the same wrk script
# against kvctl's etcd face (server.etcd_listen, fsync always), both
# servers up and the two measured one right after the other in each run
# (etcd, then the face), so a machine that slows down mid-suite slows both;
# the puts first, so the ranges read keys that exist.
measure_etcd() {
  start_etcd "$WORK/etcd"
  local etcd_pid=$PID etcd_port=$PORT
  local face i
  PORT=$(free_port 17500)
  face=$(free_port $((PORT + 1)))
  start_bg "$WORK/kv-etcd.log" "$KVCTL" serve --data-dir "$WORK/kv-etcd" --listen "127.0.0.1:$PORT" \
    --etcd-listen "127.0.0.1:$face" --fsync always --log-level warn
  local face_pid=$PID
  wait_http "http://127.0.0.1:$PORT/readyz"
  local mode etcd_rates face_rates
  for mode in put range; do
    etcd_rates=() face_rates=()
    for i in $(seq "$RUNS"); do
      etcd_rates+=("$(etcd_wrk "$etcd_port" "$mode")")
      face_rates+=("$(etcd_wrk "$face" "$mode")")
      log "  run $i: etcd $mode/s ${etcd_rates[-1]}, kvctl's etcd face $mode/s ${face_rates[-1]}"
    done
    R[etcd_$mode]=$(printf '%s\n' "${etcd_rates[@]}" | median)
    R[kv_etcd_$mode]=$(printf '%s\n' "${face_rates[@]}" | median)
  done
  stop_pid "$face_pid"
  stop_pid "$etcd_pid"
}

start_kvctl() {  # dir, fsync: sets PID and PORT
  PORT=$(free_port 17400)
  start_bg "$1.log" "$KVCTL" serve --data-dir "$1" --listen "127.0.0.1:$PORT" --fsync "$2" --log-level warn
  wait_http "http://127.0.0.1:$PORT/readyz"
}

kvctl_wrk() {  # port, mode, threads/conns...: requests/s with bench/wrk_kv.lua
  local port=$1 mode=$2; shift 2
  KV_MODE=$mode KV_KEYS=$KEYS wrk_rps "$@" -d"${DURATION}s" -s bench/wrk_kv.lua "http://127.0.0.1:$port"
}

kvctl_p50_1client() {  # port: PUT p50 in ms at one client, from kvctl bench
  "$KVCTL" bench --addr "127.0.0.1:$1" --clients 1 --read-ratio 0 --no-fill --keys "$KEYS" \
    --duration "${DURATION}s" -o json | jq -r '.latency_ms.p50'
}

kvctl_p99_put() {  # port: PUT p99 in ms at 64 clients
  "$KVCTL" bench --addr "127.0.0.1:$1" --clients 64 --read-ratio 0 --no-fill --keys "$KEYS" \
    --duration "${DURATION}s" -o json | jq -r '.latency_ms.p99'
}

measure_kvctl() {
  start_kvctl "$WORK/kv-always" always
  local pid=$PID port=$PORT
  kvctl_fill "$port" "$KEYS"
  R[kv_get]=$(repeat kvctl_wrk "$port" get -t2 -c64)
  R[kv_put_always]=$(repeat kvctl_wrk "$port" put -t2 -c64)
  R[kv_mixed]=$(repeat kvctl_wrk "$port" mixed -t2 -c64)
  # The disk's fsync latency right before the 1-client PUTs: other I/O on the
  # machine moves it a lot, so the two are measured side by side.
  R[fsync_ms]=$(repeat measure_disk_fsync)
  R[kv_put_p50_1c]=$(repeat kvctl_p50_1client "$port")
  R[kv_put_p99]=$(repeat kvctl_p99_put "$port")
  if has_compact; then
    # PUT p99 while a compaction runs every half second.
    local stop=$WORK/compact.stop
    ( while [ ! -e "$stop" ]; do "$KVCTL" compact --addr "127.0.0.1:$port" >/dev/null 2>&1; sleep 0.5; done ) &
    local looper=$!
    PIDS+=("$looper")
    R[kv_put_p99_compacting]=$(repeat kvctl_p99_put "$port")
    touch "$stop"
    stop_pid "$looper"
  fi
  stop_pid "$pid"

  start_kvctl "$WORK/kv-interval" interval
  pid=$PID port=$PORT
  kvctl_fill "$port" "$KEYS"
  R[kv_put_interval]=$(repeat kvctl_wrk "$port" put -t2 -c64)
  stop_pid "$pid"
}

# Transactions of 3 PUTs (POST /v1/txn, keys k, k+1, k+2, no compares)
# against single PUTs, on one fresh fsync=always server, both from kvctl
# bench at 64 clients, alternating in each run; then etcd's txn of the same
# shape through its JSON gateway (wrk, bench/wrk_etcd.lua ETCD_MODE=txn)
# beside etcd's put, alternating too.
kvctl_write_rps() {  # port, txn ratio: writes (PUTs or transactions) a second from kvctl bench
  # A run with errors counts as none (nan): its rate would not be of the shape asked.
  if ! "$KVCTL" bench --addr "127.0.0.1:$1" --clients 64 --read-ratio 0 --txn-ratio "$2" --keys "$KEYS" \
       --duration "${DURATION}s" -o json >"$WORK/txn-bench.json" 2>"$WORK/txn-bench.err"; then
    echo nan
    sed 's/^/  kvctl bench: /' "$WORK/txn-bench.err" >&2
    return 0
  fi
  jq -r 'if .errors.total > 0 then "nan" else .throughput_rps end' "$WORK/txn-bench.json"
  jq -c 'select(.errors.total > 0) | .errors.by_kind' "$WORK/txn-bench.json" | sed 's/^/  kvctl bench errors: /' >&2
}

measure_txn() {
  local i pid port puts=() txns=() eputs=() etxns=()
  start_kvctl "$WORK/kv-txn" always
  pid=$PID port=$PORT
  for i in $(seq "$RUNS"); do
    puts+=("$(kvctl_write_rps "$port" 0)")
    txns+=("$(kvctl_write_rps "$port" 1)")
    log "  run $i: kvctl PUT/s ${puts[-1]}, 3-key txn/s ${txns[-1]}"
  done
  stop_pid "$pid"
  R[txn_kv_put]=$(printf '%s\n' "${puts[@]}" | median)
  R[txn_kv_txn]=$(printf '%s\n' "${txns[@]}" | median)

  start_etcd "$WORK/etcd-txn"
  pid=$PID port=$PORT
  for i in $(seq "$RUNS"); do
    eputs+=("$(etcd_wrk "$port" put)")
    etxns+=("$(etcd_wrk "$port" txn)")
    log "  run $i: etcd put/s ${eputs[-1]}, 3-put txn/s ${etxns[-1]}"
  done
  stop_pid "$pid"
  R[txn_etcd_put]=$(printf '%s\n' "${eputs[@]}" | median)
  R[txn_etcd_txn]=$(printf '%s\n' "${etxns[@]}" | median)
}

# PUT throughput under the usual load (wrk -t2 -c64, fsync always) with no
# watchers, with WATCHERS watchers on a prefix the load does not write
# ("w/": the streams are open, each gets only the probe's events), and with
# WATCHERS watchers on the prefix of the load's keys ("k": every PUT is an
# event on every watcher), the three one after another in each run. kvctl
# bench --watchers holds the streams and PUTs a probe key under the prefix
# PROBE_RATE times a second, timing each acknowledgement -> event on every
# watcher. The probe is light on purpose: at 20 a second (20k events a
# second to 1,000 watchers) it alone halved the PUT rate on a 2-core machine.
watch_put_rps() {  # port, prefix ("" for no watchers), tag: sets RPS; the watchers' JSON in $WORK/watch-TAG.json
  # Not in a $(...) subshell: the watcher's PID must reach cleanup's list.
  local port=$1 prefix=$2 tag=$3 watcher=""
  if [ -n "$prefix" ]; then
    "$KVCTL" bench --addr "127.0.0.1:$port" --watchers "$WATCHERS" --watch-prefix "$prefix" \
      --probe-rate "$PROBE_RATE" --warmup 2s --duration "${DURATION}s" -o json >"$WORK/watch-$tag.json" 2>"$WORK/watch-$tag.err" &
    watcher=$!
    PIDS+=("$watcher")
    sleep 2  # the streams open during the watchers' warmup
  fi
  RPS=$(kvctl_wrk "$port" put -t2 -c64)
  if [ -n "$watcher" ]; then
    local i
    # It ends by itself 2 s after the load (its grace time for late events).
    for i in $(seq 150); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$watcher"
  fi
}

# The floor under the delay: build/loopback_floor writes one 201-byte line
# (about one event) on each of WATCHERS bare loopback TCP connections and
# reads them on two epoll threads, a round at a time, under the same PUT
# load. A server with one connection per watcher makes at least those sends;
# kvctl's delay over the floor's, in the same run, is what kvctl adds. It
# starts 1 s into the load, and its rounds (100 ms apart) end before the load.
watch_floor() {  # port: sets RPS; the floor's JSON in $WORK/floor.json
  local port=$1 rounds floor i
  rounds=$(( (DURATION - 2) * 8 ))
  [ "$rounds" -gt 40 ] && rounds=40
  [ "$rounds" -lt 4 ] && rounds=4
  ( sleep 1; exec "$FLOOR" --connections "$WATCHERS" --rounds "$rounds" -o json ) \
    >"$WORK/floor.json" 2>"$WORK/floor.err" &
  floor=$!
  PIDS+=("$floor")
  RPS=$(kvctl_wrk "$port" put -t2 -c64)
  # Its rounds end within the load; 30 s more is for a stuck round (it gives
  # up on one after 10 s and exits non-zero).
  for i in $(seq 300); do kill -0 "$floor" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$floor" 2>/dev/null && log "  loopback_floor still running 30 s after the load: stopped"
  stop_pid "$floor"
}

floor_field() {  # jq filter: from the floor's report, or nan (and its stderr) if there is none
  local value
  value=$(jq -c "$1" "$WORK/floor.json" 2>/dev/null) || value=""
  if [ -z "$value" ] || [ "$value" = null ]; then
    echo nan
    sed 's/^/  loopback_floor: /' "$WORK/floor.err" >&2
  else
    echo "$value"
  fi
}

watch_field() {  # tag, jq filter: from the watchers' report, or nan (and their stderr) if there is none
  jq -c "$2" "$WORK/watch-$1.json" 2>/dev/null || { echo nan; sed 's/^/  watchers: /' "$WORK/watch-$1.err" >&2; }
}

measure_watch() {
  start_kvctl "$WORK/kv-watch" always
  local pid=$PID port=$PORT i base=() other=() same=() p50o=() p99o=() p50s=() p99s=() firsto=() lasto=()
  local floor_rps=() floor50=() floor99=() floorlast=()
  kvctl_fill "$port" "$KEYS"
  for i in $(seq "$RUNS"); do
    watch_put_rps "$port" "" none; base+=("$RPS")
    watch_put_rps "$port" w/ other; other+=("$RPS")
    p50o+=("$(watch_field other .delay_ms.p50)")
    p99o+=("$(watch_field other .delay_ms.p99)")
    firsto+=("$(watch_field other .delay_first_ms.p99)")
    lasto+=("$(watch_field other .delay_last_ms.p99)")
    log "  watchers on w/: $(watch_field other '{streaming, cut_off, events, probes, probe_events, probe_missing, errors}')"
    watch_put_rps "$port" k same; same+=("$RPS")
    p50s+=("$(watch_field same .delay_ms.p50)")
    p99s+=("$(watch_field same .delay_ms.p99)")
    log "  watchers on k: $(watch_field same '{streaming, cut_off, events, probes, probe_events, probe_missing, errors}')"
    watch_floor "$port"; floor_rps+=("$RPS")
    floor50+=("$(floor_field .delay_ms.p50)")
    floor99+=("$(floor_field .delay_ms.p99)")
    floorlast+=("$(floor_field .last_ms.p99)")
    log "  run $i: PUT/s none ${base[-1]}, w/ ${other[-1]}, k ${same[-1]}, floor ${floor_rps[-1]};" \
        "delay p99 ms w/ ${p99o[-1]}, k ${p99s[-1]}, loopback floor ${floor99[-1]}"
  done
  R[watch_put_none]=$(printf '%s\n' "${base[@]}" | median)
  R[watch_put_other]=$(printf '%s\n' "${other[@]}" | median)
  R[watch_put_same]=$(printf '%s\n' "${same[@]}" | median)
  R[watch_delay_p50_other]=$(printf '%s\n' "${p50o[@]}" | median)
  R[watch_delay_p99_other]=$(printf '%s\n' "${p99o[@]}" | median)
  R[watch_delay_first_p99_other]=$(printf '%s\n' "${firsto[@]}" | median)
  R[watch_delay_last_p99_other]=$(printf '%s\n' "${lasto[@]}" | median)
  R[watch_delay_p50_same]=$(printf '%s\n' "${p50s[@]}" | median)
  R[watch_delay_p99_same]=$(printf '%s\n' "${p99s[@]}" | median)
  R[watch_put_floor]=$(printf '%s\n' "${floor_rps[@]}" | median)
  R[watch_floor_p50]=$(printf '%s\n' "${floor50[@]}" | median)
  R[watch_floor_p99]=$(printf '%s\n' "${floor99[@]}" | median)
  R[watch_floor_last_p99]=$(printf '%s\n' "${floorlast[@]}" | median)
  stop_pid "$pid"
}

# Leases ending under load: one fresh kvctl server (fsync always), its keys
# filled, then per run `kvctl bench --lease-expiry`: the usual PUT load (64
# clients, read ratio 0, KEYS keys) for a second, then LEASES leases of
# LEASE_TTL s granted over one second beside it, a key attached to each,
# each timed from its deadline (grant acknowledged + TTL) to its key's delete
# event on a watch of their prefix (sent once the delete is committed). A
# run with a lease not seen to end counts as none (nan).
lease_run() {  # port, out json: one run; prints nothing
  local dur=$(( DURATION > LEASE_TTL + 3 ? DURATION : LEASE_TTL + 3 ))
  if ! "$KVCTL" bench --addr "127.0.0.1:$1" --lease-expiry "$LEASES" --lease-ttl "${LEASE_TTL}s" --clients 64 \
       --keys "$KEYS" --warmup 1s --duration "${dur}s" -o json >"$2" 2>"$2.err"; then
    sed 's/^/  kvctl bench --lease-expiry: /' "$2.err" >&2
  fi
}

lease_field() {  # json, jq filter: the figure, or nan unless every lease was seen to end
  jq -r "if .seen == .leases and .missing == 0 then $2 else \"nan\" end" "$1" 2>/dev/null || echo nan
}

measure_lease() {
  local pid port i out p99=() p50=() sent99=() max=() rps=() seen=()
  start_kvctl "$WORK/kv-lease" always
  pid=$PID port=$PORT
  kvctl_fill "$port" "$KEYS"
  for i in $(seq "$RUNS"); do
    out=$WORK/lease-$i.json
    lease_run "$port" "$out"
    p99+=("$(lease_field "$out" .delay_ms.p99)")
    p50+=("$(lease_field "$out" .delay_ms.p50)")
    max+=("$(lease_field "$out" .delay_ms.max)")
    sent99+=("$(lease_field "$out" .delay_from_sent_ms.p99)")
    rps+=("$(jq -r '.load.throughput_rps' "$out" 2>/dev/null || echo nan)")
    seen+=("$(jq -r '.seen' "$out" 2>/dev/null || echo 0)")
    log "  run $i: $(jq -c '{attached, seen, missing, before_deadline, deadline_spread_s, errors}' "$out" 2>/dev/null)" \
        "delay p50 ${p50[-1]} p99 ${p99[-1]} max ${max[-1]} ms (from sent p99 ${sent99[-1]}), PUT/s ${rps[-1]}"
  done
  stop_pid "$pid"
  R[lease_p99]=$(printf '%s\n' "${p99[@]}" | median)
  R[lease_p50]=$(printf '%s\n' "${p50[@]}" | median)
  R[lease_max]=$(printf '%s\n' "${max[@]}" | median)
  R[lease_sent_p99]=$(printf '%s\n' "${sent99[@]}" | median)
  R[lease_put_rps]=$(printf '%s\n' "${rps[@]}" | median)
  R[lease_seen_min]=$(printf '%s\n' "${seen[@]}" | sort -g | head -1)
}

# Builds before `kvctl compact` existed measure without it.
has_compact() { "$KVCTL" --help | grep -E '^ +compact ' >/dev/null; }

rss_bytes() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }

start_recovering() {  # binary, dir: starts it on the data dir; sets PID, PORT and RECOVERY_S
  local t0 t1
  PORT=$(free_port 17400)
  t0=$(date +%s%N)
  start_bg "$2.log" "$1" serve --data-dir "$2" --listen "127.0.0.1:$PORT" --fsync never --log-level warn
  wait_http "http://127.0.0.1:$PORT/readyz"
  t1=$(date +%s%N)
  RECOVERY_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", (b - a) / 1e9}')
}

recover_runs() {  # binary, dir, time key, rss key: medians of RUNS restarts on the data dir
  local i secs=() rss=()
  for i in $(seq "$RUNS"); do
    start_recovering "$1" "$2"
    secs+=("$RECOVERY_S")
    rss+=("$(awk -v r="$(rss_bytes "$PID")" -v n="$RECOVERY_KEYS" 'BEGIN {printf "%.0f\n", r / n}')")
    stop_pid "$PID"
  done
  R[$3]=$(printf '%s\n' "${secs[@]}" | median)
  R[$4]=$(printf '%s\n' "${rss[@]}" | median)
}

measure_recovery() {
  local n=$RECOVERY_KEYS dir=$WORK/kv-recovery
  log "recovery: writing $n keys into kvctl and Redis"
  start_kvctl "$dir" never
  kvctl_fill "$PORT" "$n"
  stop_pid "$PID"
  R[kv_log_mb]=$(du -sm "$dir" | cut -f1)
  # With --baseline, the other build recovers the same files first (and so
  # pays for any page cache misses).
  [ -n "$BASELINE" ] && recover_runs "$BASELINE" "$dir" base_recovery_s base_rss_per_key
  recover_runs "$KVCTL" "$dir" kv_recovery_s kv_rss_per_key
  if has_compact; then
    # Each build compacts its own copy: the snapshot format may differ.
    if [ -n "$BASELINE" ]; then
      cp -r "$dir" "$dir-baseline"
      "$BASELINE" compact --data-dir "$dir-baseline" >/dev/null
      recover_runs "$BASELINE" "$dir-baseline" base_recovery_compacted_s base_rss_compacted
      rm -rf "$dir-baseline"
    fi
    "$KVCTL" compact --data-dir "$dir" >/dev/null
    recover_runs "$KVCTL" "$dir" kv_recovery_compacted_s kv_rss_compacted
  fi

  local rdir=$WORK/redis-recovery port
  port=$(free_port 17500)
  mkdir -p "$rdir"
  local args=(--port "$port" --bind 127.0.0.1 --dir "$rdir" --save "" --appendonly yes --appendfsync no
              --aof-use-rdb-preamble no --protected-mode no)
  start_bg "$rdir/redis1.log" redis-server "${args[@]}"
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  local value
  value=$(head -c 100 /dev/zero | tr '\0' 'v')
  awk -v n="$n" -v v="$value" 'BEGIN {for (i = 0; i < n; i++) printf "SET key:%012d %s\r\n", i, v}' \
    | redis-cli -p "$port" --pipe >/dev/null
  stop_pid "$PID"
  start_bg "$rdir/redis2.log" redis-server "${args[@]}"
  local pid=$PID
  for _ in $(seq 600); do grep -q 'DB loaded from append only file' "$rdir/redis2.log" && break; sleep 0.1; done
  R[redis_recovery_s]=$(sed -nE 's/.*DB loaded from append only file: ([0-9.]+) seconds.*/\1/p' "$rdir/redis2.log" | tail -1)
  local used
  used=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory_rss:/ {print $2}' | tr -d '\r')
  R[redis_rss_per_key]=$(awk -v r="$used" -v n="$n" 'BEGIN {printf "%.0f\n", r / n}')
  stop_pid "$pid"
}

# --- run -------------------------------------------------------------------
log "kvctl benchmark suite: ${DURATION}s per measurement, $RUNS run(s), medians; work dir $WORK"
log "load: $(uptime)"
if wanted nginx; then
  log "nginx 1 worker";  measure_nginx 1
  log "nginx 2 workers"; measure_nginx 2
fi
if wanted redis; then
  log "redis always";    measure_redis always always
  log "redis everysec";  measure_redis everysec everysec
  log "redis off";       measure_redis off off
fi
if wanted etcd; then log "etcd"; measure_etcd; fi
if wanted kvctl; then log "kvctl"; measure_kvctl; fi
if wanted txn; then log "txn: 3-key transactions"; measure_txn; fi
if wanted recovery; then log "recovery"; measure_recovery; fi
if wanted watch; then log "watch: $WATCHERS watchers"; measure_watch; fi
if wanted lease; then log "lease: $LEASES leases of ${LEASE_TTL} s under PUT load"; measure_lease; fi
log "load: $(uptime)"

# --- report ----------------------------------------------------------------
v() { echo "${R[$1]:-nan}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2f\n", a / b}'; }
num() { awk -v x="$1" 'BEGIN {if (x == "nan" || x == "") print "nan"; else if (x + 0 >= 100) printf "%.0f\n", x; else printf "%.3g\n", x}'; }
row() {  # label, kvctl, peer, ratio, target (">=X" or "<=X" on the ratio, "<=Xms" on kvctl's figure, or "-")
  local met="-" x=$4 t=$5
  case "$t" in *ms) x=$2; t=${t%ms} ;; esac
  case "$t" in
    ">="*) met=$(awk -v r="$x" -v t="${t#>=}" 'BEGIN {if (r == "nan" || r == "") print "n/a"; else print (r + 0 >= t + 0 ? "met" : "NOT met")}') ;;
    "<="*) met=$(awk -v r="$x" -v t="${t#<=}" 'BEGIN {if (r == "nan" || r == "") print "n/a"; else print (r + 0 <= t + 0 ? "met" : "NOT met")}') ;;
  esac
  printf '| %-50s | %9s | %9s | %6s | %6s | %-7s |\n' "$1" "$(num "$2")" "$(num "$3")" "$4" "$5" "$met"
}

echo
echo "kvctl benchmark suite: ${DURATION} s per measurement, medians of $RUNS; wrk -t2 -c64, $KEYS keys of 16 B, 100 B values"
echo
printf '| %-50s | %9s | %9s | %6s | %6s | %-7s |\n' "target" "kvctl" "peer" "ratio" "goal" "result"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..52})" "-----------" "-----------" "--------" "--------" "---------"
row "load generator: kvctl bench vs wrk, on nginx" "$(v client_kvbench)" "$(v client_wrk)" "$(ratio "$(v client_kvbench)" "$(v client_wrk)")" ">=0.9"
row "GET req/s vs nginx static, 1 worker" "$(v kv_get)" "$(v nginx1)" "$(ratio "$(v kv_get)" "$(v nginx1)")" ">=1.0"
row "GET req/s vs nginx static, 2 workers" "$(v kv_get)" "$(v nginx2)" "$(ratio "$(v kv_get)" "$(v nginx2)")" "-"
row "GET req/s vs etcd range" "$(v kv_get)" "$(v etcd_range)" "$(ratio "$(v kv_get)" "$(v etcd_range)")" ">=10"
row "PUT fsync=always vs Redis SET appendfsync always" "$(v kv_put_always)" "$(v redis_set_always)" "$(ratio "$(v kv_put_always)" "$(v redis_set_always)")" ">=1.0"
row "PUT fsync=always vs etcd put" "$(v kv_put_always)" "$(v etcd_put)" "$(ratio "$(v kv_put_always)" "$(v etcd_put)")" ">=6"
row "3-key txn/s vs PUT/s, fsync=always, 64 clients" "$(v txn_kv_txn)" "$(v txn_kv_put)" "$(ratio "$(v txn_kv_txn)" "$(v txn_kv_put)")" ">=0.8"
row "etcd face put/s (fsync=always) vs etcd put" "$(v kv_etcd_put)" "$(v etcd_put)" "$(ratio "$(v kv_etcd_put)" "$(v etcd_put)")" ">=5"
row "etcd face range/s vs etcd range" "$(v kv_etcd_range)" "$(v etcd_range)" "$(ratio "$(v kv_etcd_range)" "$(v etcd_range)")" ">=5"
row "txn/s vs etcd txn (3 puts, gateway)" "$(v txn_kv_txn)" "$(v txn_etcd_txn)" "$(ratio "$(v txn_kv_txn)" "$(v txn_etcd_txn)")" ">=5"
row "PUT fsync=interval vs Redis SET everysec" "$(v kv_put_interval)" "$(v redis_set_everysec)" "$(ratio "$(v kv_put_interval)" "$(v redis_set_everysec)")" "-"
row "mixed 90/10 vs Redis GET, persistence off" "$(v kv_mixed)" "$(v redis_get_off)" "$(ratio "$(v kv_mixed)" "$(v redis_get_off)")" "-"
row "1-client PUT p50 ms vs disk fsync ms" "$(v kv_put_p50_1c)" "$(v fsync_ms)" "$(ratio "$(v kv_put_p50_1c)" "$(v fsync_ms)")" "<=2.0"
row "recovery s ($RECOVERY_KEYS keys) vs Redis AOF load" "$(v kv_recovery_s)" "$(v redis_recovery_s)" "$(ratio "$(v kv_recovery_s)" "$(v redis_recovery_s)")" "<=1.0"
row "recovery s after compact (goal: 0.5 s)" "$(v kv_recovery_compacted_s)" "0.5" "$(ratio "$(v kv_recovery_compacted_s)" 0.5)" "<=1.0"
row "RSS bytes/key (goal: 160; peer: Redis)" "$(v kv_rss_per_key)" "$(v redis_rss_per_key)" "$(ratio "$(v kv_rss_per_key)" 160)" "<=1.0"
row "PUT p99 ms compacting vs not" "$(v kv_put_p99_compacting)" "$(v kv_put_p99)" "$(ratio "$(v kv_put_p99_compacting)" "$(v kv_put_p99)")" "<=2.0"
row "PUT req/s, $WATCHERS watchers on w/ vs none" "$(v watch_put_other)" "$(v watch_put_none)" "$(ratio "$(v watch_put_other)" "$(v watch_put_none)")" ">=0.8"
row "PUT req/s, $WATCHERS watchers on the PUT keys vs none" "$(v watch_put_same)" "$(v watch_put_none)" "$(ratio "$(v watch_put_same)" "$(v watch_put_none)")" ">=0.8"
row "watch delay p99 ms, watchers on w/ (goal: 10; p50)" "$(v watch_delay_p99_other)" "$(v watch_delay_p50_other)" "$(ratio "$(v watch_delay_p99_other)" 10)" "<=1.0"
row "  p99 ms to a write's first watcher; to its last" "$(v watch_delay_first_p99_other)" "$(v watch_delay_last_p99_other)" "-" "-"
row "watch delay p99 ms, w/ vs loopback floor (same load)" "$(v watch_delay_p99_other)" "$(v watch_floor_p99)" "$(ratio "$(v watch_delay_p99_other)" "$(v watch_floor_p99)")" "<=1.0"
row "watch delay p99 ms, watchers on PUT keys (goal 10; p50)" "$(v watch_delay_p99_same)" "$(v watch_delay_p50_same)" "$(ratio "$(v watch_delay_p99_same)" 10)" "<=1.0"
lease_label=$LEASES; [ "$LEASES" = 1000 ] && lease_label=1,000
row "lease expiry delay p99 ($lease_label leases, 64-client PUT load)" "$(v lease_p99)" "$(v lease_p50)" "-" "<=100ms"
row "  lease delay ms: p99 from grant sent; max" "$(v lease_sent_p99)" "$(v lease_max)" "-" "-"
row "  PUT req/s meanwhile; fewest lease ends seen" "$(v lease_put_rps)" "$(v lease_seen_min)" "-" "-"
if [ -n "$BASELINE" ]; then
  echo
  echo "this build ($KVCTL) against --baseline ($BASELINE), on the same data:"
  echo
  printf '| %-50s | %9s | %9s | %6s |\n' "measure" "this" "baseline" "ratio"
  printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..52})" "-----------" "-----------" "--------"
  base_row() {  # label, key of this build, key of the baseline
    printf '| %-50s | %9s | %9s | %6s |\n' "$1" "$(num "$(v "$2")")" "$(num "$(v "$3")")" "$(ratio "$(v "$2")" "$(v "$3")")"
  }
  base_row "recovery s from the log" kv_recovery_s base_recovery_s
  base_row "recovery s from a snapshot (after compact)" kv_recovery_compacted_s base_recovery_compacted_s
  base_row "RSS bytes/key, recovered from the log" kv_rss_per_key base_rss_per_key
  base_row "RSS bytes/key, recovered from a snapshot" kv_rss_compacted base_rss_compacted
fi
echo
echo "raw medians:"
for k in $(printf '%s\n' "${!R[@]}" | sort); do printf '  %-26s %s\n' "$k" "${R[$k]}"; done
echo "  kvctl log for recovery: ${R[kv_log_mb]:-nan} MB"
