#!/usr/bin/env bash
# What users run, side by side in one run: redis-server, one Seshat node, and
# a 3-node Seshat cluster with clients on every node, over many keys, with
# 100-byte and 1 KiB values, unpipelined and pipelined.
#
#   scripts/bench-realistic.sh PATH/TO/seshat
#
# For each value size every server is emptied and loaded first
# (`SET -r KEYS -n KEYS`: random keys, so about 63% of the KEYS names
# exist, and GETs of the others answer nil as they would in Redis), so the
# data outgrows Seshat's memtables; then SET and GET are measured. The
# cluster line runs one redis-benchmark per node at once, each with a third
# of the clients and requests: req/s is their sum, p50 and p99 the worst
# node's; cpu us/req is the CPU the server's processes (every node of the
# cluster) spent per request, from /proc/PID/stat around the line: steadier
# than req/s on a shared machine, and it shows where a ratio's gap comes
# from. Then how long each load took, and each process's peak RSS (VmHWM).
#
# Knobs (environment): KEYS (1000000), REQUESTS (200000 per line),
# CLIENTS (51), VALUES ("100 1024"), PIPELINES ("1 16"), TESTS ("set get eval"),
# NODE_ARGS (extra flags for every Seshat node, e.g. "--block-cache-mb 256").
# KEYS=10000000 is the run bigger than the caches; its loads take minutes.
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-realistic.sh PATH/TO/seshat}
KEYS=${KEYS:-1000000}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-51}
VALUES=${VALUES:-100 1024}
PIPELINES=${PIPELINES:-1 16}
TESTS=${TESTS:-set get eval}
NODE_ARGS=${NODE_ARGS:-}

source "$(dirname "$0")/bench-lib.sh"
bench_setup bench-realistic

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")

single_port=$(free_port)
"$SESHAT" --data-dir "$work/single" --resp-addr "127.0.0.1:$single_port" --pg-addr off \
    --raft-addr "127.0.0.1:$(free_port)" --log-level warn $NODE_ARGS >"$work/single.log" 2>&1 &
single_pid=$!
pids+=("$single_pid")

resp=() raft=() node_pid=()
for i in 1 2 3; do resp[$i]=$(free_port); raft[$i]=$(free_port); done
members="1=127.0.0.1:${raft[1]},2=127.0.0.1:${raft[2]},3=127.0.0.1:${raft[3]}"
for i in 1 2 3; do
    "$SESHAT" --node-id "$i" --data-dir "$work/node$i" --resp-addr "127.0.0.1:${resp[$i]}" --pg-addr off \
        --raft-addr "127.0.0.1:${raft[$i]}" --initial-members "$members" --log-level warn $NODE_ARGS \
        >"$work/node$i.log" 2>&1 &
    node_pid[$i]=$!
    pids+=("${node_pid[$i]}")
done
for port in "$redis_port" "$single_port" "${resp[@]}"; do wait_ready "$port"; done
# The cluster answers writes once it has a leader.
until [ "$(redis-cli -p "${resp[1]}" SET bench:ready 1 2>/dev/null)" = "OK" ]; do sleep 0.1; done

# run PORT CLIENTS REQUESTS SIZE PIPELINE TEST: prints "req/s,p50,p99".
# TEST is one of redis-benchmark's tests, or `eval`: a short Lua script
# that SETs a random key to a value of SIZE bytes (the `set` test's work,
# through the script engine).
run() {
    local test=(-t "$6")
    if [ "$6" = eval ]; then
        test=(EVAL "redis.call('SET', KEYS[1], ARGV[1]) return 1" 1 "key:__rand_int__" "$(head -c "$4" /dev/zero | tr '\0' x)")
    fi
    # The figures are the line's last seven fields: a test named by its
    # command line may hold commas of its own.
    redis-benchmark -p "$1" -c "$2" -n "$3" -r "$KEYS" -d "$4" -P "$5" --csv "${test[@]}" 2>/dev/null |
        tail -n 1 | tr -d '"' | awk -F, '{ printf "%s,%s,%s\n", $(NF - 6), $(NF - 3), $(NF - 1) }'
}

# cpu_ticks PID...: the CPU time the processes used so far, in clock ticks.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    echo "$total"
}

# measure NAME SIZE PIPELINE TEST "PID..." PORT...: one redis-benchmark per
# port at once; appends "name,size,pipeline,test,req/s,p50,p99,cpu", cpu
# being the microseconds of CPU the server processes PID... (all nodes of a
# cluster) spent per request.
measure() {
    local name=$1 size=$2 pipeline=$3 test=$4 servers=$5; shift 5
    local clients=$((CLIENTS / $#)) requests=$((REQUESTS / $#)) i=0 runners=()
    local ticks_before
    ticks_before=$(cpu_ticks $servers)
    for port in "$@"; do
        i=$((i + 1))
        run "$port" "$clients" "$requests" "$size" "$pipeline" "$test" >"$work/run$i.csv" &
        runners+=($!)
    done
    for runner in "${runners[@]}"; do wait "$runner"; done
    local cpu_us_per_request
    cpu_us_per_request=$((($(cpu_ticks $servers) - ticks_before) * 1000000 / $(getconf CLK_TCK) / (requests * $#)))
    cat "$work"/run*.csv | awk -F, -v key="$name,$size,$pipeline,$test" -v cpu="$cpu_us_per_request" '
        { rps += $1; if ($2 > p50) p50 = $2; if ($3 > p99) p99 = $3 }
        END { printf "%s,%.0f,%.3f,%.3f,%s\n", key, rps, p50, p99, cpu }' >>"$work/results.csv"
    rm -f "$work"/run*.csv
}

for size in $VALUES; do
    for server in redis:"$redis_port" seshat-1:"$single_port" seshat-3:"${resp[1]}"; do
        port=${server#*:}
        redis-cli -p "$port" FLUSHALL >/dev/null
        started=$(date +%s.%N)
        redis-benchmark -p "$port" -c 50 -n "$KEYS" -r "$KEYS" -d "$size" -P 16 -t set -q >/dev/null 2>&1
        echo "${server%%:*} $size $(date +%s.%N) $started" >>"$work/loads.txt"
    done
    for pipeline in $PIPELINES; do
        for test in $TESTS; do
            measure redis "$size" "$pipeline" "$test" "$redis_pid" "$redis_port"
            measure seshat-1 "$size" "$pipeline" "$test" "$single_pid" "$single_port"
            measure seshat-3 "$size" "$pipeline" "$test" "${node_pid[*]}" "${resp[1]}" "${resp[2]}" "${resp[3]}"
        done
    done
done

echo "redis-benchmark -c $CLIENTS -n $REQUESTS -r $KEYS per line (loopback, $(nproc) cores)"
echo "seshat-1 = one node; seshat-3 = 3-node cluster, a third of the clients on each node"
awk -F, '
    BEGIN { printf "%-9s %6s %3s %-4s %10s %8s %8s %9s %11s\n", "server", "bytes", "P", "test", "req/s", "p50 ms", "p99 ms", "vs redis", "cpu us/req" }
    { key = $2 "," $3 "," $4; if ($1 == "redis") base[key] = $5
      printf "%-9s %6s %3s %-4s %10s %8s %8s %8.0f%% %11s\n", $1, $2, $3, $4, $5, $6, $7, 100 * $5 / base[key], $8 }' \
    "$work/results.csv"

echo "loads (SET -P 16 -n $KEYS):"
awk '{ printf "  %-9s %5s bytes: %6.1f s, %.0f req/s\n", $1, $2, $3 - $4, '"$KEYS"' / ($3 - $4) }' "$work/loads.txt"

echo "peak RSS (VmHWM):"
rss() { awk '/^VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status"; }
echo "  redis-server $(rss "$redis_pid"); seshat-1 $(rss "$single_pid");" \
    "seshat-3 nodes $(rss "${node_pid[1]}"), $(rss "${node_pid[2]}"), $(rss "${node_pid[3]}")"
