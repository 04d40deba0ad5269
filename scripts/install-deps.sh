#!/usr/bin/env bash
# Installs the system packages Seshat needs to build and test, idempotently:
# nothing is installed when everything is already there.
#
#   libclang-dev, clang  RocksDB's Rust bindings (bindgen) and its C++ build
#   redis-tools          redis-cli and redis-benchmark, used by tests and benches
#   redis-server         the reference server for benchmarks and the
#                        differential tests
#   postgresql-client    psql and pgbench, used by the PostgreSQL frontend's tests
#   postgresql           PostgreSQL 15's server: the sqllogictest files run
#                        against it too, so their expected results are
#                        PostgreSQL's (tests/tests/slt.rs starts it)
#   python3-venv         a virtualenv for the Python client tests (psycopg,
#                        asyncpg, redis-py from PyPI: seshat_tests::python)
#   faketime             runs a node with a skewed wall clock in the chaos tests
#   ccache               caches RocksDB's C++ objects: `cargo clippy` and
#                        `cargo build` run RocksDB's build script separately,
#                        and the second run then costs seconds, not minutes
set -euo pipefail

missing=()
need() { # need PACKAGE CHECK-COMMAND...
    local package=$1; shift
    if ! "$@" >/dev/null 2>&1; then missing+=("$package"); fi
}
need libclang-dev bash -c 'ls /usr/lib/llvm-*/lib/libclang.so* || ls /usr/lib/x86_64-linux-gnu/libclang*.so*'
need clang command -v clang
need g++ command -v g++
need make command -v make
need redis-tools command -v redis-cli
need redis-server command -v redis-server
need ccache command -v ccache
need faketime command -v faketime
need postgresql-client command -v psql
need postgresql test -x /usr/lib/postgresql/15/bin/postgres
need util-linux command -v setpriv
need python3-venv python3 -c 'import venv, ensurepip'

if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in cargo rustfmt cargo-clippy; do
    command -v "$tool" >/dev/null || { echo "missing Rust tool: $tool (install the Rust toolchain with rustfmt and clippy)" >&2; exit 1; }
done
