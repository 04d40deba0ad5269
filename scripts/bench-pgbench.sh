#!/usr/bin/env bash
# Stock pgbench against PostgreSQL 15, a single Seshat node and a 3-node
# Seshat cluster in one run: `pgbench -i -s $SCALE` (timed), then the
# default TPC-B-like script and the select-only one (-S), each
# `-c $CLIENTS -j $THREADS -T $DURATION`. Prints tps, latency average
# and p99 (from the per-transaction logs), and Seshat's ratio to
# PostgreSQL.
#
#   scripts/bench-pgbench.sh PATH/TO/seshat
#
# The cluster's clients are on every node: one pgbench per node at once,
# the clients split between them (8 = 3 + 3 + 2), their tps summed.
# PostgreSQL runs with its defaults (fsync, synchronous_commit on, READ
# COMMITTED); Seshat's transactions are serializable, so two transfers
# that pick the same account conflict (failures are counted, not retried).
# Knobs (environment): SCALE (10), DURATION (30), CLIENTS (8), THREADS (2),
# MODE (the -M query mode, simple), NODE_ARGS (extra flags for every node).
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-pgbench.sh PATH/TO/seshat}
SCALE=${SCALE:-10}
SECONDS_PER_RUN=${DURATION:-30}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
MODE=${MODE:-simple}
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

# run SYSTEM WORKLOAD PORT...: one pgbench per port at once, the clients
# split between them; appends "system,workload,tps,avg ms,p99 ms,failed".
run() {
    local system=$1 workload=$2; shift 2
    local dir="$work/logs/$system-$workload" i=0 runners=() ports=$# flags=()
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

initialize postgres "$pg_port"
run postgres tpcb-like "$pg_port"
run postgres select-only "$pg_port"

for nodes in 1 3; do
    start_seshat "$SESHAT" "$nodes" "${node_args[@]}"
    # The load goes through the leader, as PostgreSQL's is local: a
    # follower would forward the 1M-row COPY to it.
    initialize "seshat-$nodes" "$(sql_leader_pg "$SESHAT")"
    # Followers apply the load's large entries after the leader: wait
    # until every node answers before measuring.
    for port in "${seshat_pg[@]}"; do
        for _ in $(seq 1 600); do
            psql -q -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT count(*) FROM pgbench_branches' \
                >/dev/null 2>&1 && break
            sleep 0.2
        done
    done
    run "seshat-$nodes" tpcb-like "${seshat_pg[@]}"
    run "seshat-$nodes" select-only "${seshat_pg[@]}"
    stop_seshat
done

echo "stock pgbench -s $SCALE, -c $CLIENTS -j $THREADS -T $SECONDS_PER_RUN -M $MODE (loopback, $(nproc) cores)"
echo "seshat-3: a 3-node cluster, one pgbench per node at once (clients split, tps summed)"
awk -F, '{ printf "pgbench -i -s %s: %-9s %6.1f s\n", scale, $1, $3 }' scale="$SCALE" "$work/init.csv"
awk -F, '
    BEGIN { printf "%-12s %-9s %9s %9s %9s %7s %7s\n", "workload", "system", "tps", "avg ms", "p99 ms", "failed", "vs pg" }
    $1 == "postgres" { pg[$2] = $3 }
    { printf "%-12s %-9s %9.0f %9.3f %9.3f %7d %6.0f%%\n", $2, $1, $3, $4, $5, $6, 100 * $3 / pg[$2] }' "$results"
