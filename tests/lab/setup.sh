#!/usr/bin/env bash
# Create (or reuse) tests/lab/.venv with the lab's pinned requirements.
# Idempotent: a stamp file records the sha256 of requirements.txt; when it matches,
# nothing is installed and the script returns in well under a second.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$LAB_DIR/.venv"
REQ="$LAB_DIR/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "lab: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
echo "lab: installing $REQ" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
echo "lab: ready ($VENV)" >&2
