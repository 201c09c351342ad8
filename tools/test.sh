#!/usr/bin/env bash
# All the tests: tox's default envlist (unit with cinder's parity suite,
# simulator, full stack, pep8), or the tox arguments given, e.g.
#   tools/test.sh -e reliability      tools/test.sh -e bench -- --quick
# Each env installs the Debian packages it needs (as root): the simulator's
# build packages, RabbitMQ for the full stack, redis, etcd, qemu-img.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/tools/need-debs.sh" git
exec bash "$top/tools/tox.sh" "$@"
