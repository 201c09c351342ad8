#!/usr/bin/env bash
# Run a command against a second simulator of the project's build with two
# datacenters ("-dc 2 -ds 2": clusters DC0_C0 and DC1_C0, datastores of the
# same names in each), next to the default one, with its own state folder
# and port (VCSIM_TWO_DC_LISTEN, default 127.0.0.1:8990). The tests it runs
# know the simulator's inventory, so with VCENTER_HOST set (a vCenter of
# your own) it says so and runs nothing.
set -euo pipefail

if [ -n "${VCENTER_HOST:-}" ]; then
    echo "two-datacenter tests not run: they need the simulator's inventory," \
        "and VCENTER_HOST names a vCenter" >&2
    exit 0
fi

top=$(cd "$(dirname "$0")/.." && pwd)
export VCSIM_STATE=${VCSIM_PREFIX:-$top/.vcsim}/two-datacenters
export VCSIM_LISTEN=${VCSIM_TWO_DC_LISTEN:-127.0.0.1:8990}
export VCSIM_ARGS="-dc 2 -ds 2 -ds-type VMFS"
exec "$top/tools/with-vcenter.sh" "$@"
