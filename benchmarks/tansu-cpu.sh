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
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TANSU="$(cat "$ROOT/.brokers/tansu-path")"
PY=$ROOT/.brokers/venv/bin/python
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine memory://tansu/ >"/tmp/tansu-cpu-$PORT.log" 2>&1 &
TP=$!
trap 'kill $TP 2>/dev/null; wait $TP 2>/dev/null' EXIT
B=127.0.0.1:$PORT
$PY - "$B" t1 <<'PY'
import sys, time
from kafka.admin import KafkaAdminClient, NewTopic
b, t = sys.argv[1], sys.argv[2]
d = time.time() + 30
while True:
    try:
        a = KafkaAdminClient(bootstrap_servers=b, client_id="tansu-cpu"); break
    except Exception:
        if time.time() > d: raise
        time.sleep(0.2)
a.create_topics([NewTopic(t, num_partitions=6, replication_factor=1)])
while len(a.describe_topics([t])[0]["partitions"]) != 6: time.sleep(0.1)
a.close()
PY
ticks() { awk '{print $14 + $15}' "/proc/$TP/stat"; }
HZ=$(getconf CLK_TCK)
BEFORE=$(ticks)
"$BIN" run --client "$CLIENT" --workload "$W" --records "$N" --bootstrap "$B" --topic t1 | tr -d '\n'
AFTER=$(ticks)
echo " tansu_cpu_s=$(awk -v a="$AFTER" -v b="$BEFORE" -v hz="$HZ" 'BEGIN { printf "%.2f", (a - b) / hz }')"
