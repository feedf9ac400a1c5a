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
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TANSU="$(cat $ROOT/.brokers/tansu-path)"
PY=$ROOT/.brokers/venv/bin/python
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine memory://tansu/ >/tmp/ab-tansu-$PORT.log 2>&1 &
TP=$!
trap 'kill $TP 2>/dev/null; wait $TP 2>/dev/null' EXIT
B=127.0.0.1:$PORT
mk() {
$PY - "$B" "$1" <<'PY'
import sys, time
from kafka.admin import KafkaAdminClient, NewTopic
b, t = sys.argv[1], sys.argv[2]
d = time.time() + 30
while True:
    try:
        a = KafkaAdminClient(bootstrap_servers=b, client_id="ab"); break
    except Exception as e:
        if time.time() > d: raise
        time.sleep(0.2)
a.create_topics([NewTopic(t, num_partitions=6, replication_factor=1)])
while len(a.describe_topics([t])[0]["partitions"]) != 6: time.sleep(0.1)
a.close()
PY
}
i=0
for r in $(seq $ROUNDS); do
  for bin in "$@"; do
    i=$((i+1)); t="ab-$W-$i"; mk "$t"
    line=$("$bin" run --client ferrokafka --workload "$W" --records "$N" --bootstrap "$B" --topic "$t")
    cpu=$(echo "$line" | sed 's/.*"client_cpu_s_per_million":\([0-9.]*\).*/\1/')
    rps=$(echo "$line" | sed 's/.*"records_per_s":\([0-9.]*\).*/\1/')
    echo "$(basename $bin) $W round $r cpu/M $cpu rps $rps load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
