# Sourced by the benchmark helper scripts (ab-producer.sh, tansu-cpu.sh):
# starts one local Tansu (memory storage, 127.0.0.1, a free port) that is
# stopped when the sourcing script exits, and makes 6-partition topics on
# it with kafka-python, a tool that is not under test.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/local-tansu.sh"
#   start_tansu LOG_PREFIX     # sets TANSU_PID and BOOTSTRAP
#   make_topic NAME
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=$ROOT/.brokers/venv/bin/python

start_tansu() {
    local tansu port
    tansu="$(cat "$ROOT/.brokers/tansu-path")"
    port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"/tmp/$1-$port.log" 2>&1 &
    TANSU_PID=$!
    trap 'kill $TANSU_PID 2>/dev/null; wait $TANSU_PID 2>/dev/null' EXIT
    BOOTSTRAP=127.0.0.1:$port
}

make_topic() {
$PY - "$BOOTSTRAP" "$1" <<'PY'
import sys, time
from kafka.admin import KafkaAdminClient, NewTopic
b, t = sys.argv[1], sys.argv[2]
d = time.time() + 30
while True:
    try:
        a = KafkaAdminClient(bootstrap_servers=b, client_id="bench-tools"); break
    except Exception:
        if time.time() > d: raise
        time.sleep(0.2)
a.create_topics([NewTopic(t, num_partitions=6, replication_factor=1)])
while len(a.describe_topics([t])[0]["partitions"]) != 6: time.sleep(0.1)
a.close()
PY
}
