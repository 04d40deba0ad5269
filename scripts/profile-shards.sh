#!/usr/bin/env bash
# Where a 3-node cluster's CPU goes, per request, with one shard and with
# SHARDS under transparent routing: `perf record` (DWARF call graphs) of
# the three nodes while a redis-benchmark on every node runs, then the
# samples summed by stage (openraft's core, the state machine's apply,
# the WAL sync thread, replication, the transport, proposals, read-index
# rounds, RESP connections, the runtime's parking) per 1000 requests.
#
#   scripts/profile-shards.sh PATH/TO/seshat
#
# Knobs (environment): SHARDS (3), TEST (set; or get), PIPELINE (1),
# REQUESTS (60000 per benchmark), CLIENTS (17 per benchmark), KEYS
# (300000 loaded first), HZ (299: samples per second per CPU).
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: profile-shards.sh PATH/TO/seshat}
SHARDS=${SHARDS:-3}
TEST=${TEST:-set}
PIPELINE=${PIPELINE:-1}
REQUESTS=${REQUESTS:-60000}
CLIENTS=${CLIENTS:-17}
KEYS=${KEYS:-300000}
HZ=${HZ:-299}

command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
source "$(dirname "$0")/bench-lib.sh"
bench_setup profile

# profile SHARDS: appends "SHARDS req/s" to $work/summary and leaves the
# samples in $work/perf-SHARDS.txt.
profile() {
    local shards=$1 port outs=() perf_pid
    start_seshat "$SESHAT" 3 --shards "$shards"
    wait_leaders_spread "$SESHAT" "$shards"
    redis-benchmark -p "${seshat_resp[0]}" -c 50 -n "$KEYS" -r "$KEYS" -d 100 -P 16 -t set -q >/dev/null 2>&1
    perf record -F "$HZ" --call-graph dwarf,16384 -p "$(IFS=,; echo "${seshat_pids[*]}")" \
        -o "$work/perf.data" >/dev/null 2>&1 &
    perf_pid=$!
    local started=$SECONDS
    for port in "${seshat_resp[@]}"; do
        redis-benchmark -p "$port" -n "$REQUESTS" -c "$CLIENTS" -t "$TEST" -P "$PIPELINE" -r "$KEYS" -d 100 \
            --csv >"$work/bench-$port.csv" 2>/dev/null &
        outs+=($!)
    done
    wait "${outs[@]}"
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    perf script -i "$work/perf.data" 2>/dev/null >"$work/perf-$shards.txt"
    echo "$shards $(tail -q -n 1 "$work"/bench-*.csv | tr -d '"' | awk -F, '{ s += $2 } END { printf "%.0f", s }')" \
        >>"$work/summary"
    rm -f "$work"/bench-*.csv "$work/perf.data"
    stop_seshat
    rm -rf "$work"/seshat-3-*
}

profile 1
profile "$SHARDS"
echo "$TEST -P $PIPELINE: redis-benchmark -n $REQUESTS -c $CLIENTS on each of 3 nodes, $KEYS keys; perf samples at $HZ Hz"
python3 - "$work" $((REQUESTS * 3)) <<'PY'
import collections, re, sys
work, requests = sys.argv[1], int(sys.argv[2])
summary = open(f"{work}/summary").read().split("\n")[:-1]
# The first matching pattern, looking at a sample's whole stack, names its stage.
STAGES = [
    ("WAL sync thread", r"storage::wal_syncer"),
    ("state machine apply", r"sm::worker::Worker"),
    ("replication", r"openraft::replication::ReplicationCore"),
    ("openraft core", r"openraft::core::raft_core::RaftCore"),
    ("proposals (submit)", r"raft::submit::"),
    ("read-index rounds", r"raft::reads::"),
    ("transport", r"raft::transport::"),
    ("RESP connections", r"protocol_resp::"),
    ("kv service", r"\bkv::"),
    ("RocksDB background", r"rocksdb::(DBImpl::BG|ThreadPoolImpl|CompactionJob|FlushJob)"),
    ("runtime parking", r"park_internal|park_condvar|park_timeout"),
    ("runtime other", r"tokio::runtime"),
]
columns = []
for line in summary:
    shards, rps = line.split()
    counts = collections.Counter()
    for sample in open(f"{work}/perf-{shards}.txt").read().split("\n\n"):
        stack = sample.strip().split("\n")[1:]
        if not stack:
            continue
        counts[next((name for name, p in STAGES if any(re.search(p, f) for f in stack)), "other")] += 1
    columns.append((shards, int(rps), counts))
print(f"{'stage':22}" + "".join(f"{s + ' shard(s)':>14}" for s, _, _ in columns) + "   (samples per 1000 requests)")
for name in [n for n, _ in STAGES] + ["other", "total"]:
    cells = [(sum(c.values()) if name == "total" else c[name]) * 1000 / requests for _, _, c in columns]
    print(f"{name:22}" + "".join(f"{v:14.1f}" for v in cells))
print(f"{'req/s':22}" + "".join(f"{r:14d}" for _, r, _ in columns))
PY
