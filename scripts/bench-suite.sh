#!/usr/bin/env bash
# redis-benchmark's default suite against redis-server, a single Seshat node
# and a 3-node Seshat cluster, side by side in one run.
#
#   scripts/bench-suite.sh PATH/TO/seshat
#
# Knobs (environment): REQUESTS (default 100000), CLIENTS (50), TESTS (the
# default suite: ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,
# zadd,zpopmin,lrange,mset; lrange runs LRANGE_100/300/500/600), and
# always an XADD line (10000 streams, MAXLEN ~ 1000) and an EVAL line (a
# short script that increments one of 10000 counters).
# Servers, measured one at a time on loopback (`-q -n REQUESTS`):
#   redis      redis-server with no persistence (the speed ceiling)
#   seshat-1   a single Seshat node (every write fsynced before its reply)
#   seshat-3   a 3-node cluster, via its leader (every write fsynced on a
#              majority before its reply)
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-suite.sh PATH/TO/seshat}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset}

source "$(dirname "$0")/bench-lib.sh"
bench_setup bench-suite

# bench NAME PORT: appends "NAME,test,rps" lines to the results: the
# default tests, then XADD to 10000 streams capped near 1000 entries each,
# then EVAL of a short script on 10000 keys.
bench() {
    redis-benchmark -p "$2" -t "$TESTS" -n "$REQUESTS" -c "$CLIENTS" --csv 2>/dev/null |
        tail -n +2 | tr -d '"' | awk -F, -v name="$1" '{ printf "%s,%s,%s\n", name, $1, $2 }' >>"$work/results.csv"
    redis-benchmark -p "$2" -n "$REQUESTS" -c "$CLIENTS" -r 10000 --csv \
        XADD 'bench:stream:__rand_int__' MAXLEN '~' 1000 '*' field value 2>/dev/null |
        tail -n +2 | tr -d '"' | awk -F, -v name="$1" '{ printf "%s,XADD (-r 10000 ~1000),%s\n", name, $2 }' \
        >>"$work/results.csv"
    redis-benchmark -p "$2" -n "$REQUESTS" -c "$CLIENTS" -r 10000 --csv \
        EVAL "return redis.call('INCRBY', KEYS[1], ARGV[1])" 1 'bench:counter:__rand_int__' 2 2>/dev/null |
        tail -n +2 | awk -F'","' -v name="$1" '{ printf "%s,EVAL INCRBY (-r 10000),%s\n", name, $2 }' \
        >>"$work/results.csv"
}

port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_ready "$port"
bench redis "$port"
kill "${pids[-1]}"

port=$(free_port)
"$SESHAT" --data-dir "$work/single" --resp-addr "127.0.0.1:$port" --pg-addr off --log-level warn >"$work/single.log" 2>&1 &
pids+=($!)
wait_ready "$port"
bench seshat-1 "$port"
kill "${pids[-1]}"

resp=() raft=()
for i in 1 2 3; do resp[$i]=$(free_port); raft[$i]=$(free_port); done
members="1=127.0.0.1:${raft[1]},2=127.0.0.1:${raft[2]},3=127.0.0.1:${raft[3]}"
for i in 1 2 3; do
    "$SESHAT" --node-id "$i" --data-dir "$work/node$i" --resp-addr "127.0.0.1:${resp[$i]}" --pg-addr off \
        --raft-addr "127.0.0.1:${raft[$i]}" --initial-members "$members" --log-level warn >"$work/node$i.log" 2>&1 &
    pids+=($!)
done
for i in 1 2 3; do wait_ready "${resp[$i]}"; done
leader=
for _ in $(seq 1 400); do
    for i in 1 2 3; do
        if redis-cli -p "${resp[$i]}" INFO replication 2>/dev/null | grep -q '^seshat_raft_role:leader'; then leader=$i; fi
    done
    [ -n "$leader" ] && break
    sleep 0.02
done
[ -n "$leader" ] || { echo "the cluster elected no leader" >&2; exit 1; }
bench seshat-3 "${resp[$leader]}"

echo "redis-benchmark -q -n $REQUESTS -c $CLIENTS (loopback, $(nproc) cores; one machine for every process)"
awk -F, '
    { rps[$1 "," $2] = $3; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
    END {
        printf "%-24s %11s %11s %9s %11s %9s\n", "test", "redis", "seshat-1", "vs redis", "seshat-3", "vs redis"
        for (t = 1; t <= n; t++) {
            r = rps["redis," order[t]]
            printf "%-24s %11.0f %11.0f %8.0f%% %11.0f %8.0f%%\n", order[t], r, rps["seshat-1," order[t]],
                100 * rps["seshat-1," order[t]] / r, rps["seshat-3," order[t]], 100 * rps["seshat-3," order[t]] / r
        }
    }' "$work/results.csv"
