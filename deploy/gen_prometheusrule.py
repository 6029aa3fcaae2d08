#!/usr/bin/env python3
"""Generate deploy/kubernetes/prometheusrule.yaml (Prometheus Operator) from
deploy/prometheus/replicanary.rules.yml, so the two never drift.

    python3 deploy/gen_prometheusrule.py            # rewrite the file
    python3 deploy/gen_prometheusrule.py --check    # exit 1 if it is not up to date (deploy/test.sh)
"""
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
RULES = DEPLOY / "prometheus" / "replicanary.rules.yml"
OUT = DEPLOY / "kubernetes" / "common" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/replicanary.rules.yml by deploy/gen_prometheusrule.py:
# edit the rules there, then run `python3 deploy/gen_prometheusrule.py`.
# Prometheus Operator picks it up when its ruleSelector matches these labels.
"""


def render() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "replicanary",
            "namespace": "replicanary",
            "labels": {"app.kubernetes.io/name": "replicanary", "app.kubernetes.io/component": "alerting",
                       "release": "prometheus"},
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is not generated from {RULES}: run python3 deploy/gen_prometheusrule.py", file=sys.stderr)
            return 1
        print(f"ok: {OUT.relative_to(DEPLOY.parent)} matches {RULES.relative_to(DEPLOY.parent)}")
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
