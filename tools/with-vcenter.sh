#!/usr/bin/env bash
# Run a command against a vCenter: the one VCENTER_HOST names, or else the
# project's vCenter simulator (tools/vcsim/vcsim.sh), built when missing or
# out of date, started unless one already listens on VCSIM_LISTEN, and
# stopped afterwards if this script started it. The command finds the
# endpoint in VCENTER_HOST, VCENTER_PORT, VCENTER_WSDL and VCENTER_INSECURE.
set -euo pipefail

if [ -n "${VCENTER_HOST:-}" ]; then
    exec "$@"
fi

top=$(cd "$(dirname "$0")/.." && pwd)
vcsim=$top/tools/vcsim/vcsim.sh
export VCSIM_PREFIX=${VCSIM_PREFIX:-$top/.vcsim}
export VCSIM_LISTEN=${VCSIM_LISTEN:-127.0.0.1:8989}

bash "$vcsim" install
# The WSDL generator needs oslo.vmware and pyVmomi: the calling env's python.
wsdl=$(VCSIM_PYTHON=${VCSIM_PYTHON:-$(command -v python || command -v python3)} \
    bash "$vcsim" wsdl)

# A simulator already listening there (ours or one started by hand) is used
# as it is and left running.
started=""
if ! (exec 3<>"/dev/tcp/${VCSIM_LISTEN%:*}/${VCSIM_LISTEN##*:}") 2>/dev/null; then
    if ! out=$(bash "$vcsim" start 2>&1); then
        echo "$out" >&2
        exit 1
    fi
    started=yes
fi
stop() { [ -z "$started" ] || bash "$vcsim" stop 2>/dev/null || true; }
trap stop EXIT

export VCENTER_HOST=${VCSIM_LISTEN%:*}
export VCENTER_PORT=${VCSIM_LISTEN##*:}
export VCENTER_WSDL=$wsdl
export VCENTER_INSECURE=true
"$@"
