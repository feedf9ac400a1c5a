#!/usr/bin/env bash
# Re-record the golden Kafka wire frames: throwaway venv, captures (Tansu by default), coverage.
# Usage: scripts/golden/rerecord.sh [record.py options, e.g. --broker all, --client librdkafka]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${GOLDEN_VENV:-${TMPDIR:-/tmp}/ferrokafka-golden-venv}"
py="${PYTHON:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$here/requirements.txt"
"$venv/bin/python" "$here/record.py" "$@"
"$venv/bin/python" "$here/summary.py"
