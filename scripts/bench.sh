#!/usr/bin/env bash
# Side-by-side benchmark: ferrokafka against rdkafka (bundled librdkafka), on
# a fresh local Tansu (127.0.0.1) per produce run.
#
#   scripts/bench.sh [--quick]
#
# Builds benchmarks/ (its own crate and workspace; never built by the test
# suite) in release mode, then for each workload runs the clients interleaved,
# REPEATS times each (default 3), every run in its own process:
#
#   P100      2,000,000 records, 16-byte key, 100-byte value, no compression
#   P100-lz4  the same, lz4
#   P1K       500,000 records, 16-byte key, 1 KiB value
#   C100      read 2,000,000 records (16-byte key, 100-byte value) from the
#             beginning of a 6-partition topic filled once, all partitions assigned
#
# Produce: acks=1, linger.ms=5, batch.size=1000000 (librdkafka's default, set for
# both clients), idempotence off, 6-partition topic created by
# kafka-python's admin client (not under test). Each run prints one JSON line;
# at the end a Markdown table of the medians. --quick uses small counts.
# The ferrokafka side of the produce (consume) workloads is built when the
# library has a producer (consumer) module; otherwise only rdkafka runs them,
# and the script says so.
#
# Environment: REPEATS (default 3), BENCH_WORKLOADS (default
# "P100 P100-lz4 P1K C100"), BENCH_RESULTS (JSON lines file, default
# benchmarks/target/results.jsonl), BENCH_BATCH_SIZE (bytes: batch.size for both
# clients instead of 1000000; for the batch.size comparison in BENCHMARKS.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK=0
for arg in "$@"; do
    case "$arg" in
    --quick) QUICK=1 ;;
    *)
        echo "usage: scripts/bench.sh [--quick]" >&2
        exit 2
        ;;
    esac
done

REPEATS="${REPEATS:-3}"
WORKLOADS="${BENCH_WORKLOADS:-P100 P100-lz4 P1K C100}"
RESULTS="${BENCH_RESULTS:-$ROOT/benchmarks/target/results.jsonl}"
log() { echo "bench.sh: $*" >&2; }

records_for() {
    if [ "$QUICK" = 1 ]; then
        case "$1" in P1K) echo 20000 ;; *) echo 100000 ;; esac
    else
        case "$1" in P1K) echo 500000 ;; *) echo 2000000 ;; esac
    fi
}

# --- build -------------------------------------------------------------------
"$ROOT/scripts/brokers.sh" install >&2

# The ferrokafka side of each kind of workload is built once the library has
# that client (the benchmark crate's features need its API).
FEATURES=""
for side in producer consumer; do
    if grep -q "^pub mod $side;" "$ROOT/src/lib.rs"; then
        FEATURES="$FEATURES ferrokafka-$side"
    else
        log "the library has no $side yet: its workloads measure rdkafka only"
    fi
done
log "building benchmarks/ (release;${FEATURES:- rdkafka only})"
(cd "$ROOT/benchmarks" && cargo build --release --quiet --features "$FEATURES")
BENCH="$ROOT/benchmarks/target/release/ferrokafka-bench"

# --- broker ------------------------------------------------------------------
# start_tansu, make_topic, stop_tansu: one fresh Tansu at a time.
. "$ROOT/benchmarks/local-tansu.sh"
trap stop_tansu EXIT INT TERM
TANSU_LOG="$ROOT/benchmarks/target/tansu.log"

# Starts a fresh Tansu (memory storage) and creates a 6-partition topic $1 on it;
# sets BOOTSTRAP.
start_tansu_with_topic() {
    start_tansu "$TANSU_LOG"
    make_topic "$1"
}

# --- runs --------------------------------------------------------------------
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"
run_one() { # client workload records topic
    local line
    line="$("$BENCH" run --client "$1" --workload "$2" --records "$3" --bootstrap "$BOOTSTRAP" --topic "$4")"
    echo "$line"
    echo "$line" >>"$RESULTS"
}

for workload in $WORKLOADS; do
    records="$(records_for "$workload")"
    read -r -a CLIENTS <<<"$("$BENCH" clients --workload "$workload")"
    log "$workload: clients ${CLIENTS[*]}"
    if [ "$workload" = C100 ]; then
        # One broker, filled once (by rdkafka, untimed), read by every run.
        start_tansu_with_topic bench-c100
        log "C100: filling bench-c100 with $records records"
        "$BENCH" fill --workload C100 --records "$records" --bootstrap "$BOOTSTRAP" --topic bench-c100
        for repeat in $(seq "$REPEATS"); do
            for client in "${CLIENTS[@]}"; do
                log "C100 run $repeat/$REPEATS: $client"
                run_one "$client" C100 "$records" bench-c100
            done
        done
        stop_tansu
    else
        for repeat in $(seq "$REPEATS"); do
            for client in "${CLIENTS[@]}"; do
                log "$workload run $repeat/$REPEATS: $client (fresh Tansu)"
                start_tansu_with_topic "bench-$repeat"
                run_one "$client" "$workload" "$records" "bench-$repeat"
                stop_tansu
            done
        done
    fi
done

# --- medians -----------------------------------------------------------------
echo
"$PYTHON" - "$RESULTS" "$QUICK" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
order = ["P100", "P100-lz4", "P1K", "C100"]
groups = {}
for run in runs:
    groups.setdefault((run["workload"], run["client"]), []).append(run)
print(f"Medians of {max(len(v) for v in groups.values())} runs{' (--quick)' if sys.argv[2] == '1' else ''}:")
print()
print("| workload | client | records | seconds | records/s | MB/s | client CPU-s per million |")
print("|---|---|---:|---:|---:|---:|---:|")
for (workload, client) in sorted(groups, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1])):
    g = groups[(workload, client)]
    m = lambda key: statistics.median(r[key] for r in g)
    print(f"| {workload} | {client} | {g[0]['records']:,} | {m('seconds'):.2f} | {m('records_per_s'):,.0f} "
          f"| {m('mb_per_s'):.1f} | {m('client_cpu_s_per_million'):.3f} |")
PY
