#!/usr/bin/env bash
# Run tox from a virtualenv of its own (.tox/.bootstrap), made with the
# python3 first on PATH: Debian's python3 has no pip and refuses installs
# outside a virtualenv (PEP 668). Quick when the virtualenv is there.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=$top/.tox/.bootstrap

if ! "$venv/bin/python" -c 'import tox' 2>/dev/null; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian splits venv and ensurepip out of python3.
        bash "$top/tools/need-debs.sh" python3-venv
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    echo "[setup] installing tox in $venv" >&2
    "$venv/bin/python" -m pip install -qq --disable-pip-version-check \
        'tox>=4.0.0,<5'
fi
cd "$top"
exec "$venv/bin/tox" "$@"
