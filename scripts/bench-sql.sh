#!/usr/bin/env bash
# pgbench against Seshat and PostgreSQL 15 side by side in one run: the
# same schema, data and scripts, a single Seshat node and a 3-node cluster.
#
#   scripts/bench-sql.sh PATH/TO/seshat
#
# Workloads (pgbench -n -M simple -f, --max-tries 10 so that a 40001 is
# retried as PostgreSQL clients do):
#   select  point SELECT by primary key
#   update  single-row UPDATE by primary key
#   insert  single-row INSERT (a table without a primary key)
#   txn     BEGIN; UPDATE; SELECT; INSERT; END (a 3-statement transaction)
# Single node: one pgbench -c $CLIENTS -j $THREADS. Three nodes: one such
# pgbench per node at once (clients on every node), against PostgreSQL as
# three pgbench runs on one server (the same number of clients).
# PostgreSQL runs with its defaults (fsync, synchronous_commit on).
# Knobs (environment): ROWS (100000), DURATION (seconds per run, 10), CLIENTS (4),
# THREADS (2), WORKLOADS ("select update insert txn"), SETUPS ("1 3"),
# NODE_ARGS (extra flags for every Seshat node, e.g. "--commit-linger-us 0").
# Every process started here is stopped by pid when the script exits.
set -euo pipefail

SESHAT=${1:?usage: bench-sql.sh PATH/TO/seshat}
ROWS=${ROWS:-100000}
SECONDS_PER_RUN=${DURATION:-10}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
WORKLOADS=${WORKLOADS:-select update insert txn}
SETUPS=${SETUPS:-1 3}
read -r -a node_args <<<"${NODE_ARGS:-}"
PG_BIN=/usr/lib/postgresql/15/bin

source "$(dirname "$0")/bench-lib.sh"
bench_setup bench-sql
chmod 755 "$work"
results="$work/results.csv"

# --- PostgreSQL 15, as the postgres user when run as root.
# A command array, not a function: a function run in the background is a
# subshell whose $! is not the server's, and killing it orphaned the
# server. setpriv execs in place, so $! is the server itself.
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --locale C >/dev/null
pg_port=$(free_port)
"${as_pg[@]}" "$PG_BIN/postgres" -D "$work/pg/data" -p "$pg_port" -h 127.0.0.1 -k "$work/pg" >"$work/pg.log" 2>&1 &
pids+=($!)
until pg_isready -q -h 127.0.0.1 -p "$pg_port"; do sleep 0.1; done

# --- The workloads.
cat >"$work/schema.sql" <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_accounts;
DROP TABLE IF EXISTS bench_history;
CREATE TABLE bench_accounts (id INT PRIMARY KEY, balance INT NOT NULL, filler VARCHAR(84));
CREATE TABLE bench_history (client INT, account INT, delta INT);
SQL
load() { # psql-args...: creates the schema and ROWS accounts, 1000 per INSERT
    psql -q -X -v ON_ERROR_STOP=1 "$@" -f "$work/schema.sql" >/dev/null
    python3 - "$ROWS" <<'PY' | psql -q -X -v ON_ERROR_STOP=1 "$@" >/dev/null
import sys
rows = int(sys.argv[1])
for start in range(1, rows + 1, 1000):
    values = ", ".join(f"({i}, 0, '{'x' * 84}')" for i in range(start, min(start + 1000, rows + 1)))
    print(f"INSERT INTO bench_accounts VALUES {values};")
PY
}
cat >"$work/select.sql" <<'SQL'
\set id random(1, :rows)
SELECT balance FROM bench_accounts WHERE id = :id;
SQL
cat >"$work/update.sql" <<'SQL'
\set id random(1, :rows)
UPDATE bench_accounts SET balance = balance + 1 WHERE id = :id;
SQL
cat >"$work/insert.sql" <<'SQL'
\set id random(1, :rows)
INSERT INTO bench_history VALUES (:client_id, :id, 1);
SQL
cat >"$work/txn.sql" <<'SQL'
\set id random(1, :rows)
\set delta random(-5000, 5000)
BEGIN;
UPDATE bench_accounts SET balance = balance + :delta WHERE id = :id;
SELECT balance FROM bench_accounts WHERE id = :id;
INSERT INTO bench_history VALUES (:client_id, :id, :delta);
END;
SQL

# run SYSTEM SETUP WORKLOAD PORT...: one pgbench per port at once; appends
# "setup,workload,system,tps,p50 ms,p99 ms" from the per-transaction logs.
run() {
    local system=$1 setup=$2 workload=$3; shift 3
    local dir="$work/logs/$system-$setup-$workload" i=0 runners=()
    mkdir -p "$dir"
    for port in "$@"; do
        i=$((i + 1))
        (cd "$dir" && pgbench -n -M simple -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$CLIENTS" -j "$THREADS" \
            -T "$SECONDS_PER_RUN" --max-tries 10 -D rows="$ROWS" -f "$work/$workload.sql" \
            --log --log-prefix "run$i" >"$dir/out$i.txt" 2>&1) &
        runners+=($!)
    done
    for runner in "${runners[@]}"; do wait "$runner" || { cat "$dir"/out*.txt >&2; exit 1; }; done
    local tps
    tps=$(awk '/^tps = / { sum += $3 } END { printf "%.0f", sum }' "$dir"/out*.txt)
    cat "$dir"/run* | awk '{ print $3 / 1000 }' | sort -n | awk -v s="$setup" -v w="$workload" -v sys="$system" -v tps="$tps" '
        { v[NR] = $1 } END { printf "%s,%s,%s,%s,%.3f,%.3f\n", s, w, sys, tps, v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1] }' \
        >>"$results"
}

pg_ports() { local n=$1; for _ in $(seq 1 "$n"); do printf '%s ' "$pg_port"; done; }

for setup in $SETUPS; do
    # A fresh Seshat (node or cluster) per setup; PostgreSQL reloaded.
    seshat_pg=() seshat_pids=()
    if [ "$setup" = 1 ]; then
        port=$(free_port)
        "$SESHAT" --data-dir "$work/seshat1" --resp-addr "127.0.0.1:$(free_port)" --pg-addr "127.0.0.1:$port" \
            --raft-addr "127.0.0.1:$(free_port)" --log-level warn "${node_args[@]}" >"$work/seshat1.log" 2>&1 &
        pids+=($!); seshat_pids+=($!); seshat_pg+=("$port")
    else
        raft=() pg=() resp=()
        for i in 1 2 3; do raft[$i]=$(free_port); pg[$i]=$(free_port); resp[$i]=$(free_port); done
        members="1=127.0.0.1:${raft[1]},2=127.0.0.1:${raft[2]},3=127.0.0.1:${raft[3]}"
        for i in 1 2 3; do
            "$SESHAT" --node-id "$i" --data-dir "$work/cluster$i" --resp-addr "127.0.0.1:${resp[$i]}" \
                --pg-addr "127.0.0.1:${pg[$i]}" --raft-addr "127.0.0.1:${raft[$i]}" --initial-members "$members" \
                --log-level warn "${node_args[@]}" >"$work/cluster$i.log" 2>&1 &
            pids+=($!); seshat_pids+=($!); seshat_pg+=("${pg[$i]}")
        done
    fi
    for port in "${seshat_pg[@]}"; do
        until psql -q -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; do sleep 0.1; done
    done
    load -h 127.0.0.1 -p "${seshat_pg[0]}" -U postgres -d postgres
    load -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres
    for workload in $WORKLOADS; do
        # shellcheck disable=SC2046
        run postgres "$setup" "$workload" $(pg_ports "${#seshat_pg[@]}")
        run seshat "$setup" "$workload" "${seshat_pg[@]}"
    done
    for pid in "${seshat_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
done

echo "pgbench -n -M simple -c $CLIENTS -j $THREADS -T $SECONDS_PER_RUN per node, $ROWS accounts (loopback, $(nproc) cores)"
echo "nodes = Seshat nodes (3: one pgbench per node at once; PostgreSQL gets as many pgbench runs)"
awk -F, '
    BEGIN { printf "%-5s %-8s %-9s %9s %8s %8s %8s\n", "nodes", "workload", "system", "tps", "p50 ms", "p99 ms", "vs pg" }
    $3 == "postgres" { pg[$1 "," $2] = $4 }
    { printf "%-5s %-8s %-9s %9.0f %8.3f %8.3f %7.0f%%\n", $1, $2, $3, $4, $5, $6, 100 * $4 / pg[$1 "," $2] }' "$results"
