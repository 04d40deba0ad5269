#!/usr/bin/env bash
# redis-benchmark against a local 3-node Seshat cluster and redis-server,
# side by side in one run, then leader failover time.
#
#   scripts/bench-cluster.sh PATH/TO/seshat
#
# Knobs (environment): REQUESTS (100000), CLIENTS (50), PIPELINES ("1 16"),
# TESTS (set,get), ROUNDS (3), TRIALS (10 failovers), NODE_ARGS (extra flags
# for every node, e.g. "--election-timeout-ms 300"; empty = the defaults).
# All three nodes, redis-server and redis-benchmark share this machine's
# cores, so single runs vary by +-10%: redis-server and the cluster run side
# by side, measured alternately ROUNDS times, and the table shows each
# figure's median. The benchmark connects to the leader. Failover time = kill -9 of the leader -> first successful SET
# through a surviving node (default election timeout). Every process
# started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-cluster.sh PATH/TO/seshat}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
PIPELINES=${PIPELINES:-1 16}
TESTS=${TESTS:-set,get}
ROUNDS=${ROUNDS:-3}
TRIALS=${TRIALS:-10}
NODE_ARGS=${NODE_ARGS:-}

work=$(mktemp -d -t seshat-bench-cluster-XXXXXX)
declare -A pid_of
redis_pid=
cleanup() {
    for pid in "${pid_of[@]}" $redis_pid; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

source "$(dirname "$0")/bench-lib.sh"

bench() { # name port pipeline
    redis-benchmark -p "$2" -t "$TESTS" -n "$REQUESTS" -c "$CLIENTS" -P "$3" --csv 2>/dev/null |
        tail -n +2 | tr -d '"' |
        awk -F, -v name="$1" -v p="$3" '{ printf "%s,%s,%s,%s,%s,%s\n", name, p, $1, $2, $5, $7 }'
}

results="$work/results.csv"
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_ready "$redis_port"

resp=() raft=()
for i in 1 2 3; do resp[$i]=$(free_port); raft[$i]=$(free_port); done
members="1=127.0.0.1:${raft[1]},2=127.0.0.1:${raft[2]},3=127.0.0.1:${raft[3]}"
start_node() { # id
    "$SESHAT" --node-id "$1" --data-dir "$work/node$1" --resp-addr "127.0.0.1:${resp[$1]}" --pg-addr off \
        --raft-addr "127.0.0.1:${raft[$1]}" --initial-members "$members" --log-level warn $NODE_ARGS \
        >>"$work/node$1.log" 2>&1 &
    pid_of[$1]=$!
}
for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do wait_ready "${resp[$i]}"; done

leader() { # prints the id of the node that reports being leader
    for _ in $(seq 1 400); do
        for i in 1 2 3; do
            [ -n "${pid_of[$i]:-}" ] || continue
            if redis-cli -p "${resp[$i]}" INFO replication 2>/dev/null | grep -q '^seshat_raft_role:leader'; then
                echo "$i"; return 0
            fi
        done
        sleep 0.02
    done
    echo "no leader" >&2; exit 1
}

l=$(leader)
for round in $(seq 1 "$ROUNDS"); do
    for p in $PIPELINES; do
        bench redis "$redis_port" "$p" >>"$results"
        bench seshat-3 "${resp[$l]}" "$p" >>"$results"
    done
done
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=

echo "redis-benchmark -t $TESTS -n $REQUESTS -c $CLIENTS (loopback, $(nproc) cores; seshat-3 = 3-node cluster, via the leader)"
echo "median of $ROUNDS alternating rounds; the last column is every round's req/s"
sort -t, -k1,1 -k2,2n -k3,3 -s "$results" | awk -F, '
    function median(list,    n, v, i, j, t) {
        n = split(list, v, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    { k = $1 "," $2 "," $3; rps[k] = rps[k] " " $4; p50[k] = p50[k] " " $5; p99[k] = p99[k] " " $6
      if (!(($2 "," $3) in seen)) { seen[$2 "," $3] = 1; order[++n] = $2 "," $3 } }
    END {
        printf "%-9s %-3s %-5s %11s %8s %8s %9s   %s\n", "server", "P", "test", "req/s", "p50 ms", "p99 ms", "vs redis", "rounds"
        split("redis seshat-3", servers, " ")
        for (t = 1; t <= n; t++) for (s = 1; s <= 2; s++) {
            k = servers[s] "," order[t]; split(order[t], pt, ",")
            if (!(k in rps)) continue
            printf "%-9s %-3s %-5s %11.0f %8.3f %8.3f %8.0f%%  %s\n", servers[s], pt[1], pt[2], median(rps[k]), median(p50[k]),
                median(p99[k]), 100 * median(rps[k]) / median(rps["redis," order[t]]), rps[k]
        }
    }'

[ "$TRIALS" -gt 0 ] || exit 0
echo "leader failover (kill -9 leader -> first successful SET via a survivor), $TRIALS trials:"
times=()
for trial in $(seq 1 "$TRIALS"); do
    l=$(leader)
    survivor=$(( l % 3 + 1 ))
    start=$(date +%s%N)
    kill -9 "${pid_of[$l]}"; wait "${pid_of[$l]}" 2>/dev/null || true
    unset "pid_of[$l]"
    until [ "$(timeout 2 redis-cli -p "${resp[$survivor]}" SET failover "$trial" 2>/dev/null)" = "OK" ]; do :; done
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
    start_node "$l"; wait_ready "${resp[$l]}"
    # Let the restarted node catch up before the next kill.
    sleep 1
done
printf "%s\n" "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END {
    printf "  median %d ms, max %d ms (all: ", (NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2), t[NR]
    for (i = 1; i <= NR; i++) printf "%s%d", (i > 1 ? " " : ""), t[i]; print ")" }'
