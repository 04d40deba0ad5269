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

source "$(dirname "$0")/bench-lib.sh"
bench_setup bench-sql
results="$work/results.csv"

start_postgres

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
    local tps p50 p99
    tps=$(awk '/^tps = / { sum += $3 } END { printf "%.0f", sum }' "$dir"/out*.txt)
    read -r p50 p99 < <(percentiles "$dir"/run*)
    echo "$setup,$workload,$system,$tps,$p50,$p99" >>"$results"
}

pg_ports() { local n=$1; for _ in $(seq 1 "$n"); do printf '%s ' "$pg_port"; done; }

for setup in $SETUPS; do
    # A fresh Seshat (node or cluster) per setup; PostgreSQL reloaded.
    start_seshat "$SESHAT" "$setup" "${node_args[@]}"
    load -h 127.0.0.1 -p "${seshat_pg[0]}" -U postgres -d postgres
    load -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres
    for workload in $WORKLOADS; do
        # shellcheck disable=SC2046
        run postgres "$setup" "$workload" $(pg_ports "${#seshat_pg[@]}")
        run seshat "$setup" "$workload" "${seshat_pg[@]}"
    done
    stop_seshat
done

echo "pgbench -n -M simple -c $CLIENTS -j $THREADS -T $SECONDS_PER_RUN per node, $ROWS accounts (loopback, $(nproc) cores)"
echo "nodes = Seshat nodes (3: one pgbench per node at once; PostgreSQL gets as many pgbench runs)"
awk -F, '
    BEGIN { printf "%-5s %-8s %-9s %9s %8s %8s %8s\n", "nodes", "workload", "system", "tps", "p50 ms", "p99 ms", "vs pg" }
    $3 == "postgres" { pg[$1 "," $2] = $4 }
    { printf "%-5s %-8s %-9s %9.0f %8.3f %8.3f %7.0f%%\n", $1, $2, $3, $4, $5, $6, 100 * $4 / pg[$1 "," $2] }' "$results"
