#!/usr/bin/env bash
# The demo: volumes from one image with and without the image cache,
# created through the driver on the vCenter that VCENTER_HOST names, else
# on the project's simulator (built from Debian packages the first time).
# Installs what it needs (as root), then runs tox -e demo.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/tools/need-debs.sh" git
exec bash "$top/tools/tox.sh" -q -e demo -- "$@"
