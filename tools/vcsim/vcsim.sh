#!/usr/bin/env bash
# The project's vCenter simulator: VMware's govmomi vcsim 0.24.2, built from
# Debian's source package with the patches oslo.vmware and cinder's VMDK
# driver need (doc/simulator.md says what it can and cannot do).
#
#   tools/vcsim/vcsim.sh install   Debian packages, patched source, go build
#   tools/vcsim/vcsim.sh wsdl      generate the vim25 WSDL oslo.vmware needs
#   tools/vcsim/vcsim.sh start | stop | status
#   tools/vcsim/vcsim.sh faults [RULE-JSON | rm ID | clear]   fault injection
#   tools/vcsim/vcsim.sh rates [JSON | off]                   data-rate model
#   tools/vcsim/vcsim.sh           install (if needed) + wsdl + start
#
# install and wsdl are idempotent and quick when nothing changed: each
# records a hash of its inputs (this folder, the Debian package version) and
# redoes its work only when they differ.
#
# Environment:
#   VCSIM_PREFIX  build and state dir (default: .vcsim in the project)
#   VCSIM_STATE   state dir of one simulator (pid, log, datastores; default:
#                 the prefix): a second simulator of the same build needs its
#                 own, and its own VCSIM_LISTEN
#   VCSIM_LISTEN  listen address (default 127.0.0.1:8989; keep it on loopback)
#   VCSIM_ARGS    vcsim flags (default "-ds 2 -ds-type VMFS": two datastores,
#                 both mounted on every host; see "vcsim -h": -dc
#                 -cluster -host -ds -vm ...; -faults FILE loads fault rules at
#                 start-up; -upload-mbps -xds-copy-mbps -local-copy-mbps: the
#                 data-rate model)
#   VCSIM_PYTHON  python with oslo.vmware and pyVmomi for "wsdl" (default:
#                 python3 if it has both, else a venv in the prefix)
#
# Fault injection and the data-rate model are JSON APIs on the simulator's
# own port (/vcsim/faults, /vcsim/rates), described in doc/simulator.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PREFIX=${VCSIM_PREFIX:-$TOP/.vcsim}
STATE=${VCSIM_STATE:-$PREFIX}
LISTEN=${VCSIM_LISTEN:-127.0.0.1:8989}
ARGS=${VCSIM_ARGS--ds 2 -ds-type VMFS}
GOVMOMI_SRC=/usr/share/gocode/src/github.com/vmware/govmomi
BUILD_DEBS=(golang-go golang-github-vmware-govmomi-dev patch)

log() { echo "[vcsim] $*" >&2; }

# A hash of what a build is made of: our sources and Debian's govmomi.
build_id() {
    {
        cat "$HERE/govmomi-0.24.2.patch" "$HERE"/*.go
        dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev \
            golang-go 2>/dev/null || true
    } | sha256sum | cut -d' ' -f1
}

is_built() {
    [ -x "$PREFIX/bin/vcsim" ] &&
        [ "$(cat "$PREFIX/build-id" 2>/dev/null)" = "$(build_id)" ]
}

cmd_install() {
    if is_built; then
        return 0
    fi
    local t0=$SECONDS
    bash "$TOP/tools/need-debs.sh" "${BUILD_DEBS[@]}"
    [ -d "$GOVMOMI_SRC/simulator" ] || {
        log "error: no $GOVMOMI_SRC/simulator; fix: apt-get install --reinstall golang-github-vmware-govmomi-dev"
        exit 1
    }
    log "building the simulator in $PREFIX (govmomi $(dpkg-query -W \
        -f='${Version}' golang-github-vmware-govmomi-dev))"
    local gopath=$PREFIX/gopath
    rm -rf "$gopath" "$PREFIX/build-id"
    mkdir -p "$PREFIX/bin" "$gopath/src/github.com/vmware"
    cp -a "$GOVMOMI_SRC" "$gopath/src/github.com/vmware/"
    (cd "$gopath/src/github.com/vmware/govmomi" &&
        patch -p1 -s --no-backup-if-mismatch <"$HERE/govmomi-0.24.2.patch")
    # GOPATH mode, offline: everything comes from Debian's packages.
    (cd "$HERE" && GO111MODULE=off GOFLAGS= GOPROXY=off \
        GOPATH="$gopath:/usr/share/gocode" GOCACHE="$PREFIX/gocache" \
        go build -o "$PREFIX/bin/vcsim" ./main.go ./faults.go ./rates.go)
    rm -rf "$PREFIX/gocache" "$gopath"   # build cache and sources: not run-time
    build_id >"$PREFIX/build-id"
    log "built $PREFIX/bin/vcsim in $((SECONDS - t0)) s"
}

# vcsim does not serve /sdk/vimService.wsdl and oslo.vmware ships only the
# PBM WSDLs: generate a vim25 WSDL from oslo.vmware's vim-types.xsd and
# pyVmomi's method table.
cmd_wsdl() {
    local wsdl=$PREFIX/wsdl
    local id; id=$(sha256sum "$HERE/gen_vim_wsdl.py" | cut -d' ' -f1)
    if [ -f "$wsdl/vimService.wsdl" ] &&
            [ "$(cat "$wsdl/build-id" 2>/dev/null)" = "$id" ]; then
        echo "file://$wsdl/vimService.wsdl"
        return 0
    fi
    local py=${VCSIM_PYTHON:-}
    if [ -z "$py" ]; then
        if python3 -c 'import oslo_vmware, pyVmomi' 2>/dev/null; then
            py=python3
        else
            if [ ! -x "$PREFIX/venv/bin/python" ]; then
                python3 -m venv "$PREFIX/venv" 2>/dev/null || {
                    bash "$TOP/tools/need-debs.sh" python3-venv
                    python3 -m venv "$PREFIX/venv"
                }
                "$PREFIX/venv/bin/pip" install -q oslo.vmware pyvmomi
            fi
            py=$PREFIX/venv/bin/python
        fi
    fi
    "$py" "$HERE/gen_vim_wsdl.py" "$wsdl" >"$PREFIX/wsdl.log" 2>&1 || {
        log "error: WSDL generation failed (see $PREFIX/wsdl.log)"
        exit 1
    }
    echo "$id" >"$wsdl/build-id"
    echo "file://$wsdl/vimService.wsdl"
}

is_running() {
    [ -f "$STATE/vcsim.pid" ] && kill -0 "$(cat "$STATE/vcsim.pid")" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/${LISTEN%:*}/${LISTEN##*:}") 2>/dev/null; }

cmd_start() {
    cmd_install
    if is_running; then
        log "already running (pid $(cat "$STATE/vcsim.pid"))"
        return 0
    fi
    if port_open; then
        log "error: $LISTEN is already in use; fix: stop what listens there or set VCSIM_LISTEN"
        exit 1
    fi
    # The simulator keeps each datastore in a temporary folder; keep them in
    # the state folder so that nothing is left elsewhere, even after a kill -9.
    rm -rf "$STATE/tmp"
    mkdir -p "$STATE/tmp"
    # shellcheck disable=SC2086
    TMPDIR=$STATE/tmp nohup "$PREFIX/bin/vcsim" -l "$LISTEN" $ARGS \
        >"$STATE/vcsim.log" 2>&1 </dev/null &
    echo $! >"$STATE/vcsim.pid"
    for _ in $(seq 1 100); do
        if port_open; then
            log "listening on https://$LISTEN/sdk (pid $(cat "$STATE/vcsim.pid"), log $STATE/vcsim.log)"
            return 0
        fi
        is_running || break
        sleep 0.1
    done
    log "error: the simulator did not start:"
    cat "$STATE/vcsim.log" >&2
    exit 1
}

cmd_stop() {
    if is_running; then
        local pid; pid=$(cat "$STATE/vcsim.pid")
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        log "stopped pid $pid"
    fi
    rm -rf "$STATE/vcsim.pid" "$STATE/tmp"
}

cmd_status() {
    if is_running; then
        echo "running pid $(cat "$STATE/vcsim.pid") on $LISTEN"
    else
        echo "stopped"
        return 1
    fi
}

# A thin curl wrapper around a running simulator's JSON API $1.
api() {
    command -v curl >/dev/null || { log "error: needs curl; fix: apt-get install curl"; exit 1; }
    local url="https://$LISTEN/vcsim/$1"; shift
    local curl=(curl -sSk --fail-with-body)
    case "${1:-}" in
        "") "${curl[@]}" "$url" ;;
        clear | off) "${curl[@]}" -X DELETE "$url" ;;
        rm) "${curl[@]}" -X DELETE "$url/${2:?usage: $0 faults rm ID}" ;;
        *) "${curl[@]}" -X POST -H 'Content-Type: application/json' --data-binary "$1" "$url" ;;
    esac
}

case "${1:-all}" in
    install) cmd_install ;;
    wsdl) cmd_wsdl ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    faults) shift; api faults "$@" ;;
    rates) shift; api rates "$@" ;;
    all) cmd_install; cmd_wsdl >/dev/null; cmd_start ;;
    *) echo "usage: $0 [install|wsdl|start|stop|status|faults [RULE|rm ID|clear]|rates [JSON|off]]" >&2
       exit 2 ;;
esac
