#!/usr/bin/env bash
# Run a command against a vCenter: the one VCENTER_HOST names, or else the
# local vCenter simulator, built (first time, as root) and started here from
# the shared vcsim-setup.sh that sits beside the project, and stopped after.
# Without either, the command runs as is and simulator tests skip, saying so.
set -euo pipefail

if [ -n "${VCENTER_HOST:-}" ]; then
    exec "$@"
fi

top=$(cd "$(dirname "$0")/.." && pwd)
setup=${VCSIM_SETUP:-$top/../shared/vcsim/vcsim-setup.sh}
if [ ! -f "$setup" ]; then
    echo "with-vcenter: no VCENTER_HOST and no $setup;" \
         "vCenter tests will be skipped" >&2
    exec "$@"
fi

prefix=${VCSIM_PREFIX:-/opt/vcsim}
listen=${VCSIM_LISTEN:-127.0.0.1:8989}
export VCSIM_PREFIX=$prefix VCSIM_LISTEN=$listen
[ -x "$prefix/bin/vcsim" ] || bash "$setup" install
# The WSDL generator needs oslo.vmware and pyVmomi: this environment's python.
[ -f "$prefix/wsdl/vimService.wsdl" ] ||
    VCSIM_PYTHON=$(command -v python) bash "$setup" wsdl >/dev/null

started=""
if ! bash "$setup" status >/dev/null 2>&1; then
    bash "$setup" start >/dev/null
    started=yes
fi
stop() { [ -z "$started" ] || bash "$setup" stop >/dev/null 2>&1 || true; }
trap stop EXIT

export VCENTER_HOST=${listen%:*}
export VCENTER_PORT=${listen##*:}
export VCENTER_WSDL=file://$prefix/wsdl/vimService.wsdl
export VCENTER_INSECURE=true
"$@"
