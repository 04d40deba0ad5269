#!/usr/bin/env bash
# How long the placement takes to move shard replicas with data in them:
# a 3-node cluster (3 shards, 3 replicas each) is loaded, a fourth node
# joins and takes its share of the replicas (each copied to it by
# snapshot, then voting), and is then removed again (its replicas go back
# to the others). Prints the times, and the keys and replicas moved.
#
#   scripts/bench-placement.sh PATH/TO/seshat
#
# Knobs (environment): KEYS (1000000: -r of the load, about 63% of the
# names end up set), VALUES (100: -d).
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-placement.sh PATH/TO/seshat}
KEYS=${KEYS:-1000000}
VALUES=${VALUES:-100}

source "$(dirname "$0")/bench-lib.sh"
bench_setup placement

# placed: whether every shard's members are its target, all voting, as
# node 1 sees them.
placed() {
    "$SESHAT" shards --node "127.0.0.1:${seshat_resp[0]}" | awk '
        { members = ""; target = "" }
        { for (i = 1; i <= NF; i++) { if ($i ~ /^members=/) members = substr($i, 9); if ($i ~ /^target=/) target = substr($i, 8) } }
        members != target || members ~ /learner/ { bad = 1 }
        END { exit bad }'
}

# shard_keys: every shard's key count as node 1 sees it.
shard_keys() {
    "$SESHAT" shards --node "127.0.0.1:${seshat_resp[0]}" | grep -o 'keys=[0-9]*' | tr '\n' ' '
}

# since START: milliseconds since START (date +%s%N).
since() { echo "$((($(date +%s%N) - $1) / 1000000)) ms"; }

# wait_placed LABEL START: waits (up to 10 minutes) until placed, then
# prints LABEL and the time since START.
wait_placed() {
    for _ in $(seq 1 6000); do
        if placed; then
            echo "$1: $(since "$2")"
            return 0
        fi
        sleep 0.1
    done
    echo "$1: not placed within 10 minutes" >&2
    "$SESHAT" shards --node "127.0.0.1:${seshat_resp[0]}" >&2
    exit 1
}

start_seshat "$SESHAT" 3
redis-benchmark -p "${seshat_resp[0]}" -t set -r "$KEYS" -n "$KEYS" -P 16 -d "$VALUES" -q >/dev/null
keys=$(redis-cli -p "${seshat_resp[0]}" DBSIZE)
echo "loaded $keys keys of $VALUES B into 3 shards on 3 nodes (3 replicas each)"
"$SESHAT" shards --node "127.0.0.1:${seshat_resp[0]}"
loaded_keys=$(shard_keys)

raft4=$(free_port) resp4=$(free_port) pg4=$(free_port)
raft1=$("$SESHAT" members --node "127.0.0.1:${seshat_resp[0]}" | awk '$1 == 1 { print $2 }')
start=$(date +%s%N)
"$SESHAT" --node-id 4 --data-dir "$work/seshat-4" --resp-addr "127.0.0.1:$resp4" --pg-addr "127.0.0.1:$pg4" \
    --raft-addr "127.0.0.1:$raft4" --join "$raft1" --log-level warn >"$work/seshat-4.log" 2>&1 &
pids+=($!)
sleep 1
wait_placed "node 4 joined and took its share" "$start"
"$SESHAT" shards --node "127.0.0.1:${seshat_resp[0]}"
echo "node 4 holds $(redis-cli -p "$resp4" INFO keyspace | awk -F'[=,:]' '/^db0/ { print $3 }') keys"

start=$(date +%s%N)
redis-cli -p "${seshat_resp[0]}" SESHAT REMOVE-NODE 4 >/dev/null
echo "SESHAT REMOVE-NODE 4 answered: $(since "$start")"
wait_placed "node 4's replicas back on the others" "$start"
"$SESHAT" shards --node "127.0.0.1:${seshat_resp[0]}"
# A replica votes once it holds the log; applying it comes after. Node
# 1's replicas have caught up once their key counts are the loaded ones.
for _ in $(seq 1 6000); do
    [ "$(shard_keys)" = "$loaded_keys" ] && break
    sleep 0.1
done
echo "node 1's replicas applied what they received: $(since "$start")"
"$SESHAT" shards --node "127.0.0.1:${seshat_resp[0]}"
