# Sourced by scripts/bench.sh, benchmarks/ab-producer.sh and
# benchmarks/tansu-cpu.sh: one local Tansu at a time (memory storage,
# 127.0.0.1, a free port), stopped when the sourcing script exits, and
# 6-partition topics made on it with kafka-python, a tool that is not under
# test. The brokers must be installed (`scripts/brokers.sh install`).
#
#   . "$ROOT/benchmarks/local-tansu.sh"
#   start_tansu LOG_FILE     # stops the running one first; sets TANSU_PID, BOOTSTRAP
#   make_topic NAME
#   stop_tansu
BROKERS_DIR="${FERROKAFKA_BROKERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.brokers}"
PYTHON="$BROKERS_DIR/venv/bin/python"
TANSU_PID=""

stop_tansu() {
    if [ -n "$TANSU_PID" ]; then
        kill "$TANSU_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$TANSU_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$TANSU_PID" 2>/dev/null || true
        wait "$TANSU_PID" 2>/dev/null || true
        TANSU_PID=""
    fi
}
trap stop_tansu EXIT

start_tansu() {
    stop_tansu
    local port
    port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "$(cat "$BROKERS_DIR/tansu-path")" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$1" 2>&1 &
    TANSU_PID=$!
    BOOTSTRAP="127.0.0.1:$port"
}

make_topic() {
    "$PYTHON" - "$BOOTSTRAP" "$1" <<'PY'
import sys, time
from kafka.admin import KafkaAdminClient, NewTopic
bootstrap, topic = sys.argv[1], sys.argv[2]
deadline = time.time() + 30
while True:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
        break
    except Exception as error:  # not listening yet
        if time.time() > deadline:
            raise SystemExit(f"tansu at {bootstrap} did not come up: {error}")
        time.sleep(0.2)
admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
deadline = time.time() + 30
while len(admin.describe_topics([topic])[0]["partitions"]) != 6:
    if time.time() > deadline:
        raise SystemExit(f"topic {topic} has no 6 partitions")
    time.sleep(0.1)
admin.close()
PY
}
