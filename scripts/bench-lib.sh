# Helpers shared by the benchmark scripts (sourced, not run).

# bench_setup NAME: a fresh work dir in $work, an empty $pids list, and an
# EXIT trap that stops every process in $pids and removes $work.
bench_setup() {
    work=$(mktemp -d -t "seshat-$1-XXXXXX")
    pids=()
    trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

# free_port: prints a loopback TCP port that is free now, below the kernel's
# ephemeral range (32768-60999), so no outgoing connection can take it
# before the server binds it, and (with a $work dir) not one it printed
# before: ports are handed out before the servers bind them, so a free
# port could otherwise be handed out twice.
free_port() {
    local given=${work:+$work/ports-given}
    python3 -c '
import os, random, socket, sys
given = sys.argv[1] if len(sys.argv) > 1 else None
taken = set(open(given).read().split()) if given and os.path.exists(given) else set()
for port in random.sample(range(20000, 32000), 12000):
    if str(port) in taken:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    if given:
        with open(given, "a") as f:
            f.write(f"{port}\n")
    print(port)
    break
' ${given:+"$given"}
}

# wait_ready PORT: waits (up to 20 s) until a RESP server answers PING.
wait_ready() {
    for _ in $(seq 1 400); do
        if redis-cli -p "$1" PING >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    exit 1
}

# start_postgres: initialises PostgreSQL 15 in $work/pg with its defaults
# (fsync and synchronous_commit on) and starts it on a free port, as the
# postgres user when run as root; sets $pg_port, adds its pid to $pids.
# (setpriv execs in place, so $! is the server itself, not a subshell.)
start_postgres() {
    local pg_bin=/usr/lib/postgresql/15/bin as_pg=()
    [ "$(id -u)" = 0 ] && as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    chmod 755 "$work"
    mkdir -p "$work/pg"
    [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
    "${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --locale C >/dev/null
    pg_port=$(free_port)
    "${as_pg[@]}" "$pg_bin/postgres" -D "$work/pg/data" -p "$pg_port" -h 127.0.0.1 -k "$work/pg" >"$work/pg.log" 2>&1 &
    pids+=($!)
    until pg_isready -q -h 127.0.0.1 -p "$pg_port"; do sleep 0.1; done
}

# start_seshat SESHAT NODES [FLAGS...]: a fresh single node (NODES=1) or
# 3-node cluster (NODES=3) in $work/seshat-NODES-*, logging warnings;
# sets $seshat_pg and $seshat_resp (the nodes' PostgreSQL and RESP ports)
# and $seshat_pids, adds the pids to $pids, and waits until every node
# answers SQL.
start_seshat() {
    local seshat=$1 nodes=$2 i raft=() pg=() resp=() members=""
    shift 2
    seshat_pg=() seshat_resp=() seshat_pids=()
    for i in $(seq 1 "$nodes"); do raft[i]=$(free_port); pg[i]=$(free_port); resp[i]=$(free_port); done
    if [ "$nodes" -gt 1 ]; then
        for i in $(seq 1 "$nodes"); do members+="${members:+,}$i=127.0.0.1:${raft[i]}"; done
    fi
    for i in $(seq 1 "$nodes"); do
        "$seshat" --node-id "$i" --data-dir "$work/seshat-$nodes-$i" --resp-addr "127.0.0.1:${resp[i]}" \
            --pg-addr "127.0.0.1:${pg[i]}" --raft-addr "127.0.0.1:${raft[i]}" ${members:+--initial-members "$members"} \
            --log-level warn "$@" >"$work/seshat-$nodes-$i.log" 2>&1 &
        pids+=($!); seshat_pids+=($!); seshat_pg+=("${pg[i]}"); seshat_resp+=("${resp[i]}")
    done
    for i in "${!seshat_pg[@]}"; do
        local tries=0
        until psql -q -X -h 127.0.0.1 -p "${seshat_pg[i]}" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; do
            tries=$((tries + 1))
            if [ "$tries" -ge 600 ]; then
                echo "Seshat node $((i + 1)) did not answer SQL within 60 s; see $work/seshat-$nodes-$((i + 1)).log" >&2
                exit 1
            fi
            sleep 0.1
        done
    done
}

# wait_leaders_spread SESHAT SHARDS: waits (up to 30 s) until the shards
# of the cluster start_seshat started are led by min(SHARDS, 3) distinct
# nodes, so that a measurement starts with the leaders spread.
wait_leaders_spread() {
    local seshat=$1 shards=$2 leaders
    for _ in $(seq 1 300); do
        leaders=$("$seshat" shards --node "127.0.0.1:${seshat_resp[0]}" 2>/dev/null |
            awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^leader=[0-9]/) print $i }' | sort -u | wc -l)
        [ "$leaders" -ge $((shards < 3 ? shards : 3)) ] && return 0
        sleep 0.1
    done
}

# sql_leader_pg SESHAT: the PostgreSQL port of the node leading sql/0.
sql_leader_pg() {
    local id
    id=$("$1" groups --node "127.0.0.1:${seshat_resp[0]}" | awk '$1 == "sql/0" { sub("leader=", "", $2); print $2 }')
    echo "${seshat_pg[$((id - 1))]}"
}

# stop_seshat: stops the nodes start_seshat started, by pid.
stop_seshat() {
    for pid in "${seshat_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
}

# percentiles FILES...: "p50 p99" in ms of pgbench per-transaction logs
# (--log: the third field is the latency in microseconds).
percentiles() {
    cat "$@" | awk '{ print $3 / 1000 }' | sort -n | awk '
        { v[NR] = $1 } END { if (NR == 0) { print "0 0"; exit } printf "%.3f %.3f\n", v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1] }'
}
