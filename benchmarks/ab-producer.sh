#!/usr/bin/env bash
# A/B comparison of ferrokafka-bench binaries (e.g. copies built from two
# commits): runs them in turn, ROUNDS times, against ONE local Tansu (memory
# storage, 127.0.0.1), each run on a fresh 6-partition topic, and prints one
# line per run with its client CPU-s per million records. On a shared,
# loaded machine only such alternation compares builds fairly.
#
#   benchmarks/ab-producer.sh WORKLOAD RECORDS ROUNDS BIN...
set -euo pipefail
W=$1; N=$2; ROUNDS=$3; shift 3
. "$(dirname "${BASH_SOURCE[0]}")/local-tansu.sh"
start_tansu /tmp/ab-tansu.log
i=0
for r in $(seq $ROUNDS); do
  for bin in "$@"; do
    i=$((i+1)); t="ab-$W-$i"; make_topic "$t"
    line=$("$bin" run --client ferrokafka --workload "$W" --records "$N" --bootstrap "$BOOTSTRAP" --topic "$t")
    cpu=$(echo "$line" | sed 's/.*"client_cpu_s_per_million":\([0-9.]*\).*/\1/')
    rps=$(echo "$line" | sed 's/.*"records_per_s":\([0-9.]*\).*/\1/')
    echo "$(basename $bin) $W round $r cpu/M $cpu rps $rps load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
