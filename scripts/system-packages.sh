#!/usr/bin/env bash
# Installs the Debian packages that the tests need, each only when what it provides is missing:
# a PostgreSQL server (tests/integration, bench), Chromium (browser tests) and the tesseract command
# (the baseline of bench/ocr_throughput.py; Conveyor itself uses tesserocr's own). A no-op, in a few
# milliseconds, once everything is there. Runs apt-get as root, or through sudo when not root.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    run=(env)
elif command -v sudo >/dev/null 2>&1; then
    run=(sudo env)
else
    echo "system-packages.sh: missing ${missing[*]}; install them as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "system-packages.sh: installing ${missing[*]}"
"${run[@]}" DEBIAN_FRONTEND=noninteractive apt-get update -q
"${run[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
