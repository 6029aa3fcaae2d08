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

step "replicanary: unit and end-to-end tests (cargo test)"
cargo test --all-targets

# --- deploy/ --------------------------------------------------------------------------
# promtool rule tests, PrometheusRule/IAM/runbook consistency, Kubernetes schemas, the
# systemd unit. (Its end-to-end tests — tests/e2e_deploy_*.rs: probe-role IAM, dashboard
# metric names, a real Prometheus with the rules and one or two instances — ran in cargo
# test above.)
step "deploy/: alert rule tests, Kubernetes schemas, IAM, runbook, systemd (deploy/test.sh)"
bash deploy/test.sh
# --- end deploy/ -------------------------------------------------------------------------
