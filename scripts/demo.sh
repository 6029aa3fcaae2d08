#!/usr/bin/env bash
# The demo: the lab with the seed article's scenarios on loopback, replicanary probing them,
# a table of verdicts within about a minute, then both left running until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LISTEN="${DEMO_LISTEN:-127.0.0.1:9879}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/replicanary-demo.XXXXXX")"
CONFIG="$WORK/replicanary.yaml"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "demo: stopped (files were in $WORK)"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "demo: preparing the lab venv and building replicanary (the first time takes a few minutes)"
bash tests/lab/setup.sh
cargo build --quiet
PY=tests/lab/.venv/bin/python

LAB_PORT="$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
echo "demo: starting the lab on 127.0.0.1:$LAB_PORT and provisioning the scenarios"
$PY tests/lab/lab.py up --port "$LAB_PORT" --out "$CONFIG" --suffix=-demo 2>"$WORK/lab.log" &
PIDS+=($!)
for _ in $(seq 1 300); do [[ -s "$CONFIG" ]] && break; sleep 0.1; done
[[ -s "$CONFIG" ]] || { echo "demo: the lab did not come up; see $WORK/lab.log" >&2; exit 1; }

echo "demo: starting replicanary (config $CONFIG, logs $WORK/replicanary.log)"
AWS_ACCESS_KEY_ID=333333333333 AWS_SECRET_ACCESS_KEY=test \
AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_EC2_METADATA_DISABLED=true \
    target/debug/replicanary run --config "$CONFIG" --listen "$LISTEN" 2>"$WORK/replicanary.log" &
PIDS+=($!)

$PY scripts/demo_table.py "http://$LISTEN/metrics" --timeout 90
echo
echo "replicanary keeps probing. Status page: http://$LISTEN/ (reloads itself; no JavaScript needed)"
echo "metrics: http://$LISTEN/metrics (logs: $WORK/replicanary.log)."
echo "Press Ctrl-C to stop the daemon and the lab."
wait
