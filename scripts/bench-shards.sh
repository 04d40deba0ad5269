#!/usr/bin/env bash
# redis-benchmark against one Seshat node with one shard and with several
# (--shards), and redis-server, side by side, in one run.
#
#   scripts/bench-shards.sh PATH/TO/seshat
#
# Knobs (environment): SHARDS (default 3), REQUESTS (200000), CLIENTS (50),
# KEYS (1000000: -r, the keyspace the random keys come from), VALUES (100:
# -d), ROUNDS (2: the Seshat servers take turns, the table shows the mean
# and each round). Every server is loaded first (`SET -r KEYS -n KEYS
# -P 16`: about 63% of the KEYS names, ~630k keys of 100 B by default,
# past the 64 MiB memtables), then measured: SET and GET, unpipelined and
# -P 16, with the CPU the server spent per request (from /proc, the one
# process).
#
# Sharding a cluster of several nodes (and so redis-benchmark --cluster,
# which needs more than one node) comes with the metadata group; until
# then this measures what several groups cost or gain on one node.
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-shards.sh PATH/TO/seshat}
SHARDS=${SHARDS:-3}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
KEYS=${KEYS:-1000000}
VALUES=${VALUES:-100}
ROUNDS=${ROUNDS:-2}

source "$(dirname "$0")/bench-lib.sh"
bench_setup shards
results="$work/results.csv"

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measure NAME PORT PID: loads the keys, then one redis-benchmark per
# line, recording "NAME,line,rps,p99,cpu us per request".
measure() {
    local name=$1 port=$2 pid=$3 test pipeline before after line
    redis-benchmark -p "$port" -c 50 -n "$KEYS" -r "$KEYS" -d "$VALUES" -P 16 -t set -q >/dev/null 2>&1
    for pipeline in 1 16; do
        for test in set get; do
            before=$(cpu_ticks "$pid")
            line=$(redis-benchmark -p "$port" -t "$test" -n "$REQUESTS" -c "$CLIENTS" -P "$pipeline" \
                -r "$KEYS" -d "$VALUES" --csv 2>/dev/null | tail -n 1 | tr -d '"')
            after=$(cpu_ticks "$pid")
            awk -F, -v name="$name" -v line="${test^^} P$pipeline" -v ticks=$((after - before)) \
                -v hz="$(getconf CLK_TCK)" -v n="$REQUESTS" \
                '{ printf "%s,%s,%s,%s,%.1f\n", name, line, $2, $7, ticks * 1e6 / hz / n }' <<<"$line" >>"$results"
        done
    done
}

port=$(free_port)
mkdir -p "$work/redis"
redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis" --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_ready "$port"
measure redis "$port" "${pids[-1]}"
kill "${pids[-1]}"

# seshat NAME SHARDS: a fresh single node with that many shards, measured.
seshat() {
    local port
    port=$(free_port)
    rm -rf "$work/$1"
    "$SESHAT" --data-dir "$work/$1" --resp-addr "127.0.0.1:$port" --raft-addr "127.0.0.1:$(free_port)" \
        --pg-addr off --log-level warn --shards "$2" >"$work/$1.log" 2>&1 &
    pids+=($!)
    wait_ready "$port"
    measure "$1" "$port" "${pids[-1]}"
    kill "${pids[-1]}"
    wait "${pids[-1]}" 2>/dev/null || true
}

for round in $(seq 1 "$ROUNDS"); do
    seshat "1-shard" 1
    seshat "$SHARDS-shards" "$SHARDS"
done

echo "redis-benchmark -n $REQUESTS -c $CLIENTS -r $KEYS -d $VALUES, one node (loopback, $(nproc) cores), $ROUNDS round(s)"
printf "%-10s %-7s %10s %8s %8s %9s  %s\n" server line "req/s" "p99 ms" "cpu us" "vs redis" "req/s per round"
awk -F, -v shards="$SHARDS-shards" '
    {
        k = $1 "," $2; n[k]++; rps[k] += $3; p99[k] += $4; cpu[k] += $5; rounds[k] = rounds[k] " " int($3)
        if (!($2 in seen)) { seen[$2] = 1; order[++lines] = $2 }
    }
    END {
        split("redis 1-shard " shards, servers, " ")
        for (l = 1; l <= lines; l++) for (s = 1; s <= 3; s++) {
            k = servers[s] "," order[l]
            if (!(k in n)) continue
            mean = rps[k] / n[k]; base = rps["redis," order[l]] / n["redis," order[l]]
            printf "%-10s %-7s %10.0f %8.3f %8.1f %8.0f%%  %s\n", servers[s], order[l], mean, p99[k] / n[k], cpu[k] / n[k],
                100 * mean / base, rounds[k]
        }
    }' "$results"
