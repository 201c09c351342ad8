#!/usr/bin/env bash
# Install the Debian packages named on the command line that are missing.
# Quick when all are there (one dpkg-query). As root it runs apt-get; any
# other user gets one line naming the packages to install, and exit 1.
set -euo pipefail

missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$' ||
        missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "error: missing Debian packages: ${missing[*]}; fix: as root run" \
         "apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "[setup] apt-get install ${missing[*]}" >&2
log=$(mktemp -t need-debs-XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends \
        "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "error: apt-get install ${missing[*]} failed (above); fix: check" \
         "the machine's apt sources and network" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
