# zap front door. `make demo` and `make test` are the two commands of the README.
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_OPTS ?=

.PHONY: all deps build build-asan demo demo-single test test-fast bench-micro fuzz clean cluster-up cluster-down soak

all: build

deps:
	@./firmware-config/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# The main job: a local 3-node cluster (local-3node.yaml, net_memif), a short
# workload through every node, a leader killed and a node caught up.
demo: build
	./firmware-config/cluster-demo.sh $(BUILD)

# One node in one process: log, state machine and store, then recovery.
demo-single: build
	./$(BUILD)/dataplane/zapd --config firmware-config/dev-single.yaml --demo

# Every test in the normal build; under ASan+UBSan again every test but the
# `cluster` suite (whole-cluster fault scenarios over the same zapd code the
# sanitized unit, simulation and ZEO gateway tests already cover).
test: build build-asan
	meson test -C $(BUILD) --print-errorlogs --num-processes 2
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN_BUILD) --print-errorlogs --num-processes 2 --no-suite cluster
	@python3 tests/summary.py $(BUILD) $(ASAN_BUILD)

test-fast: build
	meson test -C $(BUILD) --print-errorlogs

# The micro-benchmarks (docs/benchmarks.md): store reads up to 1 M objects,
# 200 000 one-object applies, the log's disk floor and group commit (about
# 30 s) in BENCH_DIR, which should be on the disk the log will use.
BENCH_DIR ?= /tmp
bench-micro: build
	$(BUILD)/bench/zap-bench-store 1000000
	$(BUILD)/bench/zap-bench-apply 200000 1 100
	$(BUILD)/bench/zap-bench-log $(BENCH_DIR)

# libFuzzer on every parser (entries, YAML, log recovery, wire frames, native
# client messages, ZEO messages, ZODB records), FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= entry config log wire client zeo zodb_record

fuzz:
	@./firmware-config/install-deps.sh --fuzz
	[ -f build-fuzz/build.ninja ] || CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-fuzz $(addprefix tests/fuzz/fuzz_,$(FUZZ_TARGETS))
	for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$t; \
		[ $$t != config ] || cp firmware-config/*.yaml build-fuzz/corpus-config/; \
		[ $$t != zeo ] || cp tests/zeo/corpus/* build-fuzz/corpus-zeo/; \
		[ $$t != zodb_record ] || cp tests/zeo/corpus_record/* build-fuzz/corpus-zodb_record/; \
		./build-fuzz/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
			build-fuzz/corpus-$$t || exit 1; \
	done

# A local 3-node cluster (firmware-config/cluster.sh; CLUSTER_CONFIG picks another YAML).
CLUSTER_CONFIG ?= firmware-config/local-3node.yaml
cluster-up: build
	ZAPD=./$(BUILD)/dataplane/zapd ./firmware-config/cluster.sh up $(CLUSTER_CONFIG)

cluster-down:
	./firmware-config/cluster.sh down $(CLUSTER_CONFIG)

# The same 3-node cluster in network namespaces over net_af_packet (root;
# firmware-config/netns-cluster.sh, docs/operations.md "The netns cluster").
.PHONY: netns-up netns-down
NETNS_CONFIG ?= firmware-config/netns-3node.yaml
netns-up: build
	ZAPD=./$(BUILD)/dataplane/zapd ./firmware-config/netns-cluster.sh up $(NETNS_CONFIG)

netns-down:
	./firmware-config/netns-cluster.sh down $(NETNS_CONFIG)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The latency harness (bench/run.sh, docs/benchmarks.md): a private 3-node
# cluster, every scenario of bench/scenarios, memif / disk / etcd baselines;
# results in BENCH_OUT (default bench/results/<UTC timestamp>). bench-quick:
# short runs and 1 k objects (under 3 minutes on 2 cores once built).
# ZEO_REF=HOST:PORT (environment or `make bench ZEO_REF=...`): a ZEO 5 server
# you started; every ZEO scenario also runs against it and the report puts
# it beside zap's gateway with ratios (docs/benchmarks.md).
.PHONY: bench bench-quick
BENCH_TARGETS = dataplane/zapd bench/zap-bench bench/zap-bench-memif
bench bench-quick:
	@./firmware-config/install-deps.sh --bench
	[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) $(MESON_OPTS)
	ninja -C $(BUILD) $(BENCH_TARGETS)
	BUILD=$(BUILD) BENCH_OUT=$(BENCH_OUT) ./bench/run.sh $(if $(filter bench-quick,$@),--quick)

# The soak (bench/soak.sh, docs/benchmarks.md "Soak"): a private 3-node cluster
# takes commits that overwrite a working set for SOAK_MINUTES (default 30),
# packs now and then, and records RSS, log and checkpoint bytes and commit
# p50/p99 over time (soak.csv, soak.png) in SOAK_OUT (default
# bench/results/soak-<UTC timestamp>).
soak:
	@./firmware-config/install-deps.sh --bench
	[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) $(MESON_OPTS)
	ninja -C $(BUILD) dataplane/zapd dataplane/zap bench/zap-bench
	BUILD=$(BUILD) ./bench/soak.sh $(SOAK_OUT)
