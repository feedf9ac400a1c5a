#!/usr/bin/env bash
# One benchmark run against a fresh local Tansu (memory storage, 127.0.0.1,
# a 6-partition topic made with kafka-python), printing the client's JSON
# line followed by the CPU seconds Tansu itself used during the run (utime +
# stime from /proc): shows whether a workload is bound by the broker, and
# what each client's traffic costs it.
#
#   benchmarks/tansu-cpu.sh BIN CLIENT WORKLOAD RECORDS
#   e.g. benchmarks/tansu-cpu.sh benchmarks/target/release/ferrokafka-bench rdkafka P1K 500000
set -euo pipefail
BIN=$1; CLIENT=$2; W=$3; N=$4
. "$(dirname "${BASH_SOURCE[0]}")/local-tansu.sh"
start_tansu /tmp/tansu-cpu.log
make_topic t1
ticks() { awk '{print $14 + $15}' "/proc/$TANSU_PID/stat"; }
HZ=$(getconf CLK_TCK)
BEFORE=$(ticks)
"$BIN" run --client "$CLIENT" --workload "$W" --records "$N" --bootstrap "$BOOTSTRAP" --topic t1 | tr -d '\n'
AFTER=$(ticks)
echo " tansu_cpu_s=$(awk -v a="$AFTER" -v b="$BEFORE" -v hz="$HZ" 'BEGIN { printf "%.2f", (a - b) / hz }')"
