#!/usr/bin/env bash
# Every test replicanary has: the lab's own specification (pytest), then the Rust unit and
# end-to-end tests (which start their own labs on loopback). What README.md and .ci/run call.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "lab venv (tests/lab/.venv)"
bash tests/lab/setup.sh

step "the lab's specification: tests/lab (pytest)"
tests/lab/.venv/bin/python -m pytest tests/lab -q

# Every test binary is built once, then run in parallel lanes (scripts/test_lanes.py): the
# end-to-end binaries are independent (each test starts its own lab and daemons on free
# loopback ports, in its own temporary directory) and mostly wait on timers. Each binary's
# output is printed whole, prefixed with its name, then every duration and the total.
# TEST_LANES=1 runs them one after another, as `cargo test --all-targets` would.
step "replicanary: build every test target (cargo test --all-targets --no-run)"
built="$(mktemp)"
trap 'rm -f "$built"' EXIT
cargo test --all-targets --no-run --message-format=json-render-diagnostics >"$built"

step "replicanary: unit and end-to-end tests, ${TEST_LANES:-2} binaries at a time"
tests/lab/.venv/bin/python scripts/test_lanes.py --lanes "${TEST_LANES:-2}" "$built"

# --- deploy/ --------------------------------------------------------------------------
# promtool rule tests, PrometheusRule/IAM/runbook consistency, Kubernetes schemas, the
# systemd unit. (Its end-to-end tests — tests/e2e_deploy_*.rs: probe-role IAM, dashboard
# metric names, a real Prometheus with the rules and one or two instances — ran in cargo
# test above.)
step "deploy/: alert rule tests, Kubernetes schemas, IAM, runbook, systemd (deploy/test.sh)"
bash deploy/test.sh
# --- end deploy/ -------------------------------------------------------------------------
