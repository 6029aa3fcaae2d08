#!/usr/bin/env bash
# Every check of deploy/ that is not a Rust test: promtool's rule unit tests, the
# PrometheusRule generated from the rules, the IAM files against their CloudFormation
# templates, the runbook's sections, both Kubernetes variants (HA pair, shards) against the
# Kubernetes schemas (kubernetes-validate) and their shape, the ConfigMap's configuration
# (`replicanary validate`) and the systemd unit (systemd-analyze verify, skipped when absent).
# The end-to-end checks are Rust tests run by `cargo test`: tests/e2e_deploy_iam.rs,
# tests/e2e_deploy_metrics.rs (dashboard/rule metric names), tests/e2e_deploy_prometheus.rs,
# tests/e2e_deploy_ha.rs (two instances: an HA pair, shards).
#
# Python deps live in deploy/.venv (requirements.txt; reused while it is unchanged).
# In CI (CI set) a missing promtool is a failure; elsewhere that check is skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n--> %s\n' "$*"; }
# shellcheck source=scripts/in_ci.sh
source scripts/in_ci.sh

VENV=deploy/.venv
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum deploy/requirements.txt | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
    step "deploy venv ($VENV)"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r deploy/requirements.txt
    echo "$want" > "$STAMP"
fi
PY="$VENV/bin/python"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step "metric names of the rules and the dashboard; every verdict coloured"
"$PY" deploy/checks.py queries "$tmp/queries"

step "alert rules: promtool check + unit tests (deploy/prometheus); the dashboard's queries parse"
if command -v promtool >/dev/null; then
    promtool check rules deploy/prometheus/replicanary.rules.yml
    (cd deploy/prometheus && promtool test rules replicanary.rules.test.yml)
    promtool check rules "$tmp/queries/dashboard.rules.yml"
elif in_ci; then
    echo "FAIL: promtool not found (apt-get install prometheus)" >&2
    exit 1
else
    echo "SKIPPED: promtool not found (apt-get install prometheus); CI would fail"
fi

step "PrometheusRule is generated from the rules"
"$PY" deploy/gen_prometheusrule.py --check

step "IAM: CloudFormation templates = deploy/iam/*.json; README snippets; the table of calls = src/aws/"
"$PY" deploy/checks.py iam

step "runbook: a section per alert, per verdict and per finding"
"$PY" deploy/checks.py runbook

step "Kubernetes: both variants rendered, against the Kubernetes schemas (kubernetes-validate), and their shape"
# checks.py renders deploy/kubernetes (the HA pair) and deploy/kubernetes/sharded with the
# subset of kustomize they use; where kubectl is installed, its own rendering must agree.
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    mkdir -p "$tmp/kubectl"
    kubectl kustomize deploy/kubernetes > "$tmp/kubectl/pair.yaml"
    kubectl kustomize deploy/kubernetes/sharded > "$tmp/kubectl/sharded.yaml"
    "$PY" deploy/checks.py kubernetes "$tmp/rendered" "$tmp/kubectl"
else
    echo "(kubectl not found: the rendering is not compared with kubectl kustomize)"
    "$PY" deploy/checks.py kubernetes "$tmp/rendered"
fi
# The Prometheus Operator kinds have no schema there; checks.py checked their selectors.
"$VENV/bin/kubernetes-validate" --strict -k 1.30.0 --quiet "$tmp/rendered/pair.yaml" "$tmp/rendered/sharded.yaml"
echo "ok: every core resource of both variants validates against the Kubernetes 1.30 schemas"

step "the ConfigMap's configuration: replicanary validate"
bin=target/debug/replicanary
[[ -x "$bin" ]] || cargo build --quiet
"$PY" deploy/checks.py configmap > "$tmp/config.yaml"
"$bin" validate --config "$tmp/config.yaml"

step "systemd unit: systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
    # verify wants the ExecStart binary to exist: point it at the one just built.
    sed "s#/usr/local/bin/replicanary#$PWD/$bin#" deploy/systemd/replicanary.service > "$tmp/replicanary.service"
    systemd-analyze verify "$tmp/replicanary.service"
    echo "ok: deploy/systemd/replicanary.service verifies"
else
    echo "SKIPPED: systemd-analyze not found"
fi

# --- the image (deploy/image/) --------------------------------------------------------------
step "image: deploy/Dockerfile, deploy/image/build.sh, the Kubernetes manifests and the systemd unit agree"
"$PY" deploy/image/agree.py
# (Building and running the image needs buildah and podman: deploy/image/smoke.sh, in .ci/run.)
# --- end the image ---------------------------------------------------------------------------

step "deploy checks passed"
