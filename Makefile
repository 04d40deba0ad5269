# Seshat's entry points. Every cargo call uses the same package and target
# selection (--workspace --all-targets) so that RocksDB's C++ is built once
# per profile and reused by build, clippy and test.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO_SELECT := --workspace --all-targets --locked
SESHAT := $(CARGO_TARGET_DIR)/debug/seshat
# Benchmarks measure the optimised build. Its RocksDB is a second C++ build
# (ccache makes it quick after the first), never part of `make test`.
SESHAT_RELEASE := $(CARGO_TARGET_DIR)/release/seshat
# RocksDB's C++ goes through ccache (installed by `make deps`).
export CC := ccache cc
export CXX := ccache c++

.PHONY: deps build build-release test lint run cluster chaos differential bench-quick bench-suite bench-cluster bench-sql bench-pgbench bench-realistic bench-shards bench-placement profile-shards clean

deps:
	@scripts/install-deps.sh

build: deps
	cargo build $(CARGO_SELECT)

build-release: deps
	cargo build --release --locked -p seshat

lint: deps
	cargo fmt --all -- --check
	cargo clippy $(CARGO_SELECT) -- -D warnings

# fmt, clippy, then every test: unit, golden scripts, and end-to-end tests
# against the built binary.
test: lint build
	cargo test $(CARGO_SELECT)

# The randomized fault schedules for CHAOS_SECONDS (default 600), one
# progress line per schedule and a summary; CHAOS_SEED picks the first seed.
CHAOS_SECONDS ?= 600
CHAOS_SEED ?= 1
chaos: build
	SESHAT_CHAOS_SECONDS=$(CHAOS_SECONDS) SESHAT_CHAOS_SEED=$(CHAOS_SEED) SESHAT_TEST_LIMIT_SECONDS=0 \
		cargo test $(CARGO_SELECT) -- randomized_nemesis --nocapture

# The differential tests against redis-server for longer than `make test`
# does: DIFF_SEEDS seeds (default 40) of DIFF_COMMANDS steps (default 3000)
# from DIFF_SEED (default 1), two seeds on one shard of three, and as many
# seeds of 80 blocking-client steps (and two on a shard).
DIFF_SEEDS ?= 40
DIFF_COMMANDS ?= 3000
DIFF_SEED ?= 1
differential: build
	SESHAT_DIFF_SEEDS=$(DIFF_SEEDS) SESHAT_DIFF_COMMANDS=$(DIFF_COMMANDS) SESHAT_DIFF_SEED=$(DIFF_SEED) \
	SESHAT_BLOCKING_SEEDS=$(DIFF_SEEDS) SESHAT_BLOCKING_STEPS=80 SESHAT_BLOCKING_SEED=$(DIFF_SEED) \
	SESHAT_TEST_LIMIT_SECONDS=0 \
		cargo test $(CARGO_SELECT) -- random_command_sequences_answer_like_redis \
		random_command_sequences_on_a_shard_answer_like_redis \
		random_blocking_scenarios_answer_like_redis random_blocking_scenarios_on_a_shard_answer_like_redis --nocapture

# A single node with the defaults: data in ./seshat-data, RESP on 127.0.0.1:6379.
run: build
	$(SESHAT) $(ARGS)

# A local 3-node cluster: RESP on 6379/6380/6381, data under ./seshat-dev.
# Ctrl-C stops it.
cluster: build
	$(SESHAT) dev-cluster --nodes 3 $(ARGS)

# redis-benchmark against a single Seshat node and redis-server, side by side.
bench-quick: build-release
	scripts/bench-quick.sh $(SESHAT_RELEASE)

# redis-benchmark's default suite (-q -n 100000) against redis-server, a
# single node and a 3-node cluster, side by side.
bench-suite: build-release
	scripts/bench-suite.sh $(SESHAT_RELEASE)

# redis-server, one node and a 3-node cluster with clients on every node,
# over KEYS (1000000) keys of 100 B and 1 KiB, P1 and P16, with peak RSS
# (scripts/bench-realistic.sh lists the knobs; KEYS=10000000 for data past
# the caches).
bench-realistic: build-release
	scripts/bench-realistic.sh $(SESHAT_RELEASE)

# redis-benchmark SET/GET (P1, P16) over KEYS (1000000) keys loaded first,
# against a 3-node cluster with one shard and with SHARDS (3), routed by any
# node and by redis-benchmark --cluster, and redis-server
# (scripts/bench-shards.sh lists the knobs).
bench-shards: build-release
	scripts/bench-shards.sh $(SESHAT_RELEASE)

# Where the cluster's CPU goes per request, one shard against SHARDS (3)
# under transparent routing, by stage, from perf's call graphs
# (scripts/profile-shards.sh lists the knobs).
profile-shards: build-release
	scripts/profile-shards.sh $(SESHAT_RELEASE)

# How long moving shard replicas with data takes: a fourth node joins a
# loaded 3-node cluster and takes its share, then is removed again
# (scripts/bench-placement.sh lists the knobs).
bench-placement: build-release
	scripts/bench-placement.sh $(SESHAT_RELEASE)

# pgbench (point select, update, insert, 3-statement transaction) against
# Seshat and PostgreSQL 15 side by side, one node and three
# (scripts/bench-sql.sh lists the knobs).
bench-sql: build-release
	scripts/bench-sql.sh $(SESHAT_RELEASE)

# Stock pgbench (-i -s SCALE, then TPC-B-like and -S, -c 8 -j 2 -T 30)
# against PostgreSQL 15, a single node and a 3-node cluster, side by side,
# each workload in ROUNDS (2) rounds, PostgreSQL and one node taking turns
# (scripts/bench-pgbench.sh lists the knobs).
bench-pgbench: build-release
	scripts/bench-pgbench.sh $(SESHAT_RELEASE)

# redis-benchmark against a local 3-node cluster and redis-server, side by
# side (throughput, p50, p99), then leader failover time over TRIALS kills.
bench-cluster: build-release
	scripts/bench-cluster.sh $(SESHAT_RELEASE)

clean:
	cargo clean
