#!/usr/bin/env bash
# Stock pgbench against PostgreSQL 15, a single Seshat node and a 3-node
# Seshat cluster in one run: `pgbench -i -s $SCALE` (timed), then the
# default TPC-B-like script and the select-only one (-S), each
# `-c $CLIENTS -j $THREADS -T $DURATION`. Prints tps, latency average
# and p99 (from the per-transaction logs), and Seshat's ratio to
# PostgreSQL.
#
# Each workload runs $ROUNDS times per system, PostgreSQL and the single
# node taking turns (both are up; the idle one waits), and the table
# gives the mean of the rounds: throughput on a shared 2-core VM drifts
# by tens of percent over minutes, and taking turns keeps that drift out
# of the ratio.
#
#   scripts/bench-pgbench.sh PATH/TO/seshat
#
# The cluster's clients are on every node: one pgbench per node at once,
# the clients split between them (8 = 3 + 3 + 2), their tps summed.
# PostgreSQL runs with its defaults (fsync, synchronous_commit on, READ
# COMMITTED); Seshat's transactions are serializable, so two transfers
# that pick the same account conflict (failures are counted, not retried).
# Knobs (environment): SCALE (10), DURATION (30), CLIENTS (8), THREADS (2),
# MODE (the -M query mode, simple), ROUNDS (2), NODE_ARGS (extra flags for
# every node).
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-pgbench.sh PATH/TO/seshat}
SCALE=${SCALE:-10}
SECONDS_PER_RUN=${DURATION:-30}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
MODE=${MODE:-simple}
ROUNDS=${ROUNDS:-2}
read -r -a node_args <<<"${NODE_ARGS:-}"

source "$(dirname "$0")/bench-lib.sh"
bench_setup bench-pgbench
results="$work/results.csv"

start_postgres

# initialize SYSTEM PORT: pgbench -i, timed; records its seconds. A load
# that fails is reported and run once more (pgbench -i starts over by
# dropping the tables): on a 3-node cluster sharing 2 cores, the COMMIT of
# the 1M-row COPY can wait past --request-timeout-ms for a quorum while the
# three nodes write the load, and then answers 08006 (it may still commit).
initialize() {
    local system=$1 port=$2 started
    started=$(date +%s.%N)
    if ! pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$port" -U postgres postgres >"$work/init-$system.txt" 2>&1; then
        echo "pgbench -i on $system failed, loading again: $(grep -m1 ERROR "$work/init-$system.txt")" >&2
        pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$port" -U postgres postgres >"$work/init-$system.txt" 2>&1 \
            || { cat "$work/init-$system.txt" >&2; exit 1; }
    fi
    awk -v name="$system" -v from="$started" -v to="$(date +%s.%N)" 'BEGIN { printf "%s,init,%.1f\n", name, to - from }' \
        >>"$work/init.csv"
}

# run SYSTEM WORKLOAD ROUND PORT...: one pgbench per port at once, the
# clients split between them; appends "system,workload,tps,avg ms,p99
# ms,failed".
run() {
    local system=$1 workload=$2 round=$3; shift 3
    local dir="$work/logs/$system-$workload-$round" i=0 runners=() ports=$# flags=()
    [ "$workload" = select-only ] && flags=(-S)
    mkdir -p "$dir"
    for port in "$@"; do
        local clients=$(( CLIENTS / ports + (i < CLIENTS % ports ? 1 : 0) ))
        local threads=$(( THREADS < clients ? THREADS : clients ))
        [ "$ports" -gt 1 ] && threads=1
        i=$((i + 1))
        # -n: pgbench -i has just vacuumed.
        (cd "$dir" && pgbench -n -M "$MODE" "${flags[@]}" -h 127.0.0.1 -p "$port" -U postgres -c "$clients" \
            -j "$threads" -T "$SECONDS_PER_RUN" --log --log-prefix "run$i" postgres >"$dir/out$i.txt" 2>&1) &
        runners+=($!)
    done
    for runner in "${runners[@]}"; do wait "$runner" || { cat "$dir"/out*.txt >&2; exit 1; }; done
    local tps failed p50 p99 avg
    tps=$(awk '/^tps = / { sum += $3 } END { printf "%.0f", sum }' "$dir"/out*.txt)
    failed=$(awk '/^number of failed transactions:/ { sum += $5 } END { print sum + 0 }' "$dir"/out*.txt)
    avg=$(cat "$dir"/run* | awk '{ sum += $3; n++ } END { printf "%.3f", n ? sum / n / 1000 : 0 }')
    read -r p50 p99 < <(percentiles "$dir"/run*)
    echo "$system,$workload,$tps,$avg,$p99,$failed" >>"$results"
}

# wait_all_nodes: until every node answers a read of the loaded tables
# (followers apply the load's large entries after the leader).
wait_all_nodes() {
    for port in "${seshat_pg[@]}"; do
        for _ in $(seq 1 600); do
            psql -q -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT count(*) FROM pgbench_branches' \
                >/dev/null 2>&1 && break
            sleep 0.2
        done
    done
}

initialize postgres "$pg_port"
# The load goes through the leader, as PostgreSQL's is local: a follower
# would forward the 1M-row COPY to it.
start_seshat "$SESHAT" 1 "${node_args[@]}"
initialize seshat-1 "$(sql_leader_pg "$SESHAT")"
for workload in tpcb-like select-only; do
    for round in $(seq 1 "$ROUNDS"); do
        run postgres "$workload" "$round" "$pg_port"
        run seshat-1 "$workload" "$round" "${seshat_pg[@]}"
    done
done
stop_seshat

start_seshat "$SESHAT" 3 "${node_args[@]}"
initialize seshat-3 "$(sql_leader_pg "$SESHAT")"
wait_all_nodes
for workload in tpcb-like select-only; do
    for round in $(seq 1 "$ROUNDS"); do run seshat-3 "$workload" "$round" "${seshat_pg[@]}"; done
done
stop_seshat

echo "stock pgbench -s $SCALE, -c $CLIENTS -j $THREADS -T $SECONDS_PER_RUN -M $MODE (loopback, $(nproc) cores)," \
    "mean of $ROUNDS rounds (PostgreSQL and seshat-1 taking turns)"
echo "seshat-3: a 3-node cluster, one pgbench per node at once (clients split, tps summed)"
awk -F, '{ printf "pgbench -i -s %s: %-9s %6.1f s\n", scale, $1, $3 }' scale="$SCALE" "$work/init.csv"
printf "%-12s %-9s %9s %9s %9s %7s %7s  %s\n" workload system tps "avg ms" "p99 ms" failed "vs pg" "rounds (tps)"
awk -F, '
    { key = $2 "," $1; if (!(key in runs)) order[++n] = key
      runs[key]++; tps[key] += $3; avg[key] += $4; p99[key] += $5; failed[key] += $6
      each[key] = each[key] (runs[key] > 1 ? "/" : "") sprintf("%.0f", $3) }
    END {
        for (i = 1; i <= n; i++) {
            key = order[i]; split(key, part, ","); r = runs[key]; pg = tps[part[1] ",postgres"] / runs[part[1] ",postgres"]
            printf "%-12s %-9s %9.0f %9.3f %9.3f %7d %6.0f%%  %s\n", part[1], part[2], tps[key] / r, avg[key] / r,
                p99[key] / r, failed[key], 100 * tps[key] / r / pg, each[key]
        }
    }' "$results" | sort -s -r -k1,1
