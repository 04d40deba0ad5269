#!/usr/bin/env bash
# redis-benchmark against Seshat and redis-server, side by side, in one run.
#
#   scripts/bench-quick.sh PATH/TO/seshat
#
# Knobs (environment): REQUESTS (default 100000), CLIENTS (50), PIPELINE (1),
# TESTS (set,get). Three servers are measured on loopback, one at a time:
#   redis            redis-server with no persistence (the speed ceiling)
#   redis-fsync      redis-server with appendfsync always (same durability
#                    promise as Seshat: fsynced before the reply)
#   seshat           a single Seshat node
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-quick.sh PATH/TO/seshat}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-1}
TESTS=${TESTS:-set,get}

source "$(dirname "$0")/bench-lib.sh"
bench_setup bench

# peak_rss NAME PID: records the process's peak resident memory (VmHWM).
peak_rss() {
    echo "$1 $(awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$2/status")" >>"$work/memory"
}

# bench NAME PORT: prints "NAME,test,rps,p50,p99" lines.
bench() {
    redis-benchmark -p "$2" -t "$TESTS" -n "$REQUESTS" -c "$CLIENTS" -P "$PIPELINE" --csv 2>/dev/null |
        tail -n +2 | tr -d '"' |
        awk -F, -v name="$1" '{ printf "%s,%s,%s,%s,%s\n", name, $1, $2, $5, $7 }'
}

start_redis() { # name port extra-args...
    local name=$1 port=$2; shift 2
    mkdir -p "$work/$name"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work/$name" --save '' "$@" \
        >"$work/$name.log" 2>&1 &
    pids+=($!)
    wait_ready "$port"
}

results="$work/results.csv"
port=$(free_port); start_redis redis "$port" --appendonly no
bench redis "$port" >>"$results"
peak_rss redis "${pids[-1]}"
kill "${pids[-1]}"

port=$(free_port); start_redis redis-fsync "$port" --appendonly yes --appendfsync always
bench redis-fsync "$port" >>"$results"
peak_rss redis-fsync "${pids[-1]}"
kill "${pids[-1]}"

port=$(free_port)
"$SESHAT" --data-dir "$work/seshat" --resp-addr "127.0.0.1:$port" --pg-addr off --log-level warn >"$work/seshat.log" 2>&1 &
pids+=($!)
wait_ready "$port"
bench seshat "$port" >>"$results"
peak_rss seshat "${pids[-1]}"

echo "redis-benchmark -t $TESTS -n $REQUESTS -c $CLIENTS -P $PIPELINE (loopback, $(nproc) cores)"
printf "%-12s %-6s %12s %9s %9s %14s %17s\n" server test "req/s" "p50 ms" "p99 ms" "vs redis" "vs redis-fsync"
awk -F, '
    { rps[$1","$2] = $3; p50[$1","$2] = $4; p99[$1","$2] = $5; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
    END {
        split("redis redis-fsync seshat", servers, " ")
        for (t = 1; t <= n; t++) for (s = 1; s <= 3; s++) {
            k = servers[s] "," order[t]
            if (!(k in rps)) continue
            printf "%-12s %-6s %12.0f %9.3f %9.3f %13.0f%% %16.0f%%\n", servers[s], order[t], rps[k], p50[k], p99[k],
                100 * rps[k] / rps["redis," order[t]], 100 * rps[k] / rps["redis-fsync," order[t]]
        }
    }' "$results"
echo "peak resident memory:"
sed 's/^/  /' "$work/memory"
