#!/usr/bin/env bash
# redis-benchmark against a 3-node Seshat cluster with one shard and with
# several (--shards), and redis-server, side by side, in one run.
#
#   scripts/bench-shards.sh PATH/TO/seshat
#
# Lines: redis-server; the 3-node cluster with 1 shard and with SHARDS
# shards under transparent routing (a redis-benchmark on every node, each
# with a third of the clients and requests: any node serves any key,
# forwarding to the key's shard leader); and the SHARDS-shard cluster
# under the Redis Cluster protocol (`--cluster-enabled yes`, a
# `redis-benchmark --cluster` started on every node with a third of the
# clients and requests, which sends each key to its slot's leader).
#
# Knobs (environment): SHARDS (default 3), REQUESTS (200000), CLIENTS (51),
# KEYS (1000000: -r, the keyspace the random keys come from), VALUES (100:
# -d), ROUNDS (1: the Seshat clusters take turns, the table shows the
# mean and each round). Every server is loaded first (`SET -r KEYS -n KEYS
# -P 16`: about 63% of the KEYS names, ~630k keys of 100 B by default,
# past the 64 MiB memtables), then measured: SET and GET, unpipelined and
# -P 16: throughput (summed over the benchmarks of a line), p99 (the
# worst of them), the CPU the server processes spent per request (every
# node summed, from /proc) and, for Seshat, the requests per Raft log
# entry (every shard's applied index, from `seshat shards`, before and
# after): a log entry's costs (replication, syncs, apply on every
# replica) are shared by that many requests, so fewer per entry means
# more CPU per request.
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-shards.sh PATH/TO/seshat}
SHARDS=${SHARDS:-3}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-51}
KEYS=${KEYS:-1000000}
VALUES=${VALUES:-100}
ROUNDS=${ROUNDS:-1}

source "$(dirname "$0")/bench-lib.sh"
bench_setup shards
results="$work/results.csv"

# cpu_ticks PID...: user + system clock ticks the processes have used.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    echo "$total"
}

# applied_entries: the sum of every shard's applied index on the Seshat
# node at RESP port $entries_port; empty when that is unset (redis-server).
applied_entries() {
    [ -n "${entries_port:-}" ] || return 0
    "$SESHAT" shards --node "127.0.0.1:$entries_port" |
        awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^applied=/) { sub("applied=", "", $i); n += $i } } END { print n + 0 }'
}

# bench NAME LINE PIDS -- REDIS-BENCHMARK-ARGS...; ...: runs the given
# redis-benchmarks (separated by ';' words) at once and records
# "NAME,LINE,summed rps,worst p99,cpu us per request,requests per entry".
bench() {
    local name=$1 line=$2 pids_text=$3 before after entries_before entries_after out=() i=0 args=()
    shift 4
    entries_before=$(applied_entries)
    before=$(cpu_ticks $pids_text)
    for word in "$@" ";"; do
        if [ "$word" = ";" ]; then
            redis-benchmark "${args[@]}" --csv >"$work/bench-$i.csv" 2>/dev/null &
            out+=($!); i=$((i + 1)); args=()
        else
            args+=("$word")
        fi
    done
    wait "${out[@]}"
    after=$(cpu_ticks $pids_text)
    entries_after=$(applied_entries)
    tail -q -n 1 "$work"/bench-*.csv | tr -d '"' | awk -F, -v name="$name" -v line="$line" \
        -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$REQUESTS" \
        -v entries="${entries_after:+$((entries_after - entries_before))}" '
        { rps += $2; if ($7 > p99) p99 = $7 }
        END {
            # Reads append nothing (an expiry sweep may): writes only.
            per_entry = entries > 0 && line ~ /^SET/ ? sprintf("%.1f", n / entries) : "-"
            printf "%s,%s,%.0f,%s,%.1f,%s\n", name, line, rps, p99, ticks * 1e6 / hz / n, per_entry
        }' >>"$results"
    rm -f "$work"/bench-*.csv
}

# measure NAME MODE PIDS PORTS...: loads the keys, then SET and GET at
# pipeline 1 and 16. MODE: single (one benchmark), spread (one per port,
# the clients and requests divided), cluster (as spread, each
# redis-benchmark --cluster).
measure() {
    local name=$1 mode=$2 pids_text=$3 test pipeline port
    shift 3
    local ports=("$@") common
    local load=(-p "${ports[0]}" -c 50 -n "$KEYS" -r "$KEYS" -d "$VALUES" -P 16 -t set -q)
    [ "$mode" = cluster ] && load+=(--cluster)
    redis-benchmark "${load[@]}" >/dev/null 2>&1
    for pipeline in 1 16; do
        for test in set get; do
            common=(-t "$test" -P "$pipeline" -r "$KEYS" -d "$VALUES")
            case $mode in
            single) bench "$name" "${test^^} P$pipeline" "$pids_text" -- -p "${ports[0]}" -n "$REQUESTS" \
                -c "$CLIENTS" "${common[@]}" ;;
            spread | cluster)
                local words=()
                [ "$mode" = cluster ] && common+=(--cluster)
                for port in "${ports[@]}"; do
                    words+=(-p "$port" -n $((REQUESTS / ${#ports[@]})) -c $((CLIENTS / ${#ports[@]})) "${common[@]}" ";")
                done
                unset 'words[${#words[@]}-1]'
                bench "$name" "${test^^} P$pipeline" "$pids_text" -- "${words[@]}" ;;
            esac
        done
    done
}

port=$(free_port)
mkdir -p "$work/redis"
redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis" --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_ready "$port"
measure redis single "${pids[-1]}" "$port"
kill "${pids[-1]}"

# cluster NAME MODE SHARDS [FLAGS...]: a fresh 3-node cluster with that
# many shards, once its shards' leaders have spread, measured.
cluster() {
    local name=$1 mode=$2 shards=$3
    shift 3
    start_seshat "$SESHAT" 3 --shards "$shards" "$@"
    wait_leaders_spread "$SESHAT" "$shards"
    entries_port=${seshat_resp[0]}
    measure "$name" "$mode" "${seshat_pids[*]}" "${seshat_resp[@]}"
    entries_port=
    stop_seshat
    rm -rf "$work"/seshat-3-*
}

for round in $(seq 1 "$ROUNDS"); do
    cluster "1-shard" spread 1
    cluster "$SHARDS-shards" spread "$SHARDS"
    cluster "$SHARDS-cluster" cluster "$SHARDS" --cluster-enabled yes
done

echo "redis-benchmark -n $REQUESTS -c $CLIENTS -r $KEYS -d $VALUES; Seshat: 3 nodes (loopback, $(nproc) cores), $ROUNDS round(s)"
printf "%-10s %-7s %10s %8s %8s %9s %9s  %s\n" server line "req/s" "p99 ms" "cpu us" "req/entry" "vs redis" \
    "req/s per round"
awk -F, -v shards="$SHARDS" '
    {
        k = $1 "," $2; n[k]++; rps[k] += $3; p99[k] += $4; cpu[k] += $5; rounds[k] = rounds[k] " " int($3)
        if ($6 != "-") { per_entry[k] += $6; entry_rounds[k]++ }
        if (!($2 in seen)) { seen[$2] = 1; order[++lines] = $2 }
    }
    END {
        split("redis 1-shard " shards "-shards " shards "-cluster", servers, " ")
        for (l = 1; l <= lines; l++) for (s = 1; s <= 4; s++) {
            k = servers[s] "," order[l]
            if (!(k in n)) continue
            mean = rps[k] / n[k]; base = rps["redis," order[l]] / n["redis," order[l]]
            entry = entry_rounds[k] ? sprintf("%.1f", per_entry[k] / entry_rounds[k]) : "-"
            printf "%-10s %-7s %10.0f %8.3f %8.1f %9s %8.0f%%  %s\n", servers[s], order[l], mean, p99[k] / n[k], cpu[k] / n[k],
                entry, 100 * mean / base, rounds[k]
        }
    }' "$results"
