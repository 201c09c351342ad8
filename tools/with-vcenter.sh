#!/usr/bin/env bash
# Run a command against a vCenter: the one VCENTER_HOST names, or else the
# local vCenter simulator, stopped again afterwards. The simulator comes from
# the shared vcsim-setup.sh beside the project (built the first time, as
# root), or, without that script, from an already built one in VCSIM_PREFIX.
# Without either, the command runs as is and vCenter tests skip, saying so.
set -euo pipefail

if [ -n "${VCENTER_HOST:-}" ]; then
    exec "$@"
fi

top=$(cd "$(dirname "$0")/.." && pwd)
setup=${VCSIM_SETUP:-$top/../shared/vcsim/vcsim-setup.sh}
prefix=${VCSIM_PREFIX:-/opt/vcsim}
listen=${VCSIM_LISTEN:-127.0.0.1:8989}
export VCSIM_PREFIX=$prefix VCSIM_LISTEN=$listen
wsdl=$prefix/wsdl/vimService.wsdl
started=""

if [ -f "$setup" ]; then
    [ -x "$prefix/bin/vcsim" ] || bash "$setup" install
    # The WSDL generator needs oslo.vmware and pyVmomi: this env's python.
    [ -f "$wsdl" ] ||
        VCSIM_PYTHON=$(command -v python) bash "$setup" wsdl >/dev/null
    if ! bash "$setup" status >/dev/null 2>&1; then
        bash "$setup" start >/dev/null
        started=setup
    fi
elif [ -x "$prefix/bin/vcsim" ] && [ -f "$wsdl" ]; then
    if ! (exec 3<>"/dev/tcp/${listen%:*}/${listen##*:}") 2>/dev/null; then
        "$prefix/bin/vcsim" -l "$listen" -ds-type VMFS \
            >"$(mktemp -t vcsim-XXXXXX.log)" 2>&1 </dev/null &
        started=$!
        for _ in $(seq 1 100); do
            (exec 3<>"/dev/tcp/${listen%:*}/${listen##*:}") 2>/dev/null &&
                break
            sleep 0.1
        done
    fi
else
    echo "with-vcenter: no VCENTER_HOST, no $setup and no simulator in" \
         "$prefix; vCenter tests will be skipped" >&2
    exec "$@"
fi

stop() {
    case "$started" in
        "") ;;
        setup) bash "$setup" stop >/dev/null 2>&1 || true ;;
        *) kill "$started" 2>/dev/null || true ;;
    esac
}
trap stop EXIT

export VCENTER_HOST=${listen%:*}
export VCENTER_PORT=${listen##*:}
export VCENTER_WSDL=file://$wsdl
export VCENTER_INSECURE=true
"$@"
