#!/usr/bin/env bash
# Install what `make e2e` needs: Debian's chromium and the Python packages in
# e2e/requirements.txt, into the venv given as $1 (default .venv).
# Idempotent: apt-get runs only if chromium is missing, pip skips what is there.
# Never runs `playwright install`: that downloads a browser build, which this
# network does not allow; playwright drives /usr/bin/chromium instead.
set -euo pipefail

venv="${1:-.venv}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "e2e/setup.sh: chromium is missing; run as root or: sudo apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "e2e/setup.sh: no venv at $venv (expected $venv/bin/python)" >&2
    exit 1
fi
"$venv/bin/python" -m pip install -q -r "$here/requirements.txt"
