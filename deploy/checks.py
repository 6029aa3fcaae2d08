#!/usr/bin/env python3
"""Static checks of deploy/ (run by deploy/test.sh with deploy/.venv's python):

- iam:      the CloudFormation templates' policies are exactly the deploy/iam/*.json files
            (the ones the lab provisions the probe roles from);
- runbook:  every alert's runbook_url points at a heading of docs/runbook.md, and the
            runbook has a section for every alert and every verdict (SPEC.md §3);
- configmap: prints the configuration embedded in deploy/kubernetes/configmap.yaml
            (deploy/test.sh feeds it to `replicanary validate`).

    deploy/.venv/bin/python deploy/checks.py iam|runbook|configmap
"""
import json
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
OUTCOMES = ["credentials_failed", "source_write_failed", "not_replicated", "replication_failed",
            "replication_timeout", "replica_missing", "undecryptable", "content_mismatch",
            "not_kms_encrypted", "wrong_kms_key", "error", "ok"]


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Sub, !If, !Ref, ...) as {"Fn::X": ...}."""


def _cfn(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else ("Fn::GetAtt" if tag_suffix == "GetAtt" else f"Fn::{tag_suffix}")
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn)


def resolve(value):
    """Fn::Sub strings as their template text (the same ${Name} placeholders as the JSON
    files), Fn::If as its 'true' branch (every optional part present), AWS::NoValue removed."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"]
        if set(value) == {"Fn::If"}:
            return resolve(value["Fn::If"][1])
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value if v != {"Ref": "AWS::NoValue"}]
    return value


def normalise(doc):
    """Policy documents compare equal whatever the JSON/YAML spelling: a single Action is a list."""
    doc = json.loads(json.dumps(doc))
    for st in doc["Statement"]:
        if isinstance(st.get("Action"), str):
            st["Action"] = [st["Action"]]
    return doc


def check_iam() -> list[str]:
    errors = []
    for side in ("source", "destination"):
        template = yaml.load((DEPLOY / "iam/cloudformation" / f"{side}-probe-role.yaml").read_text(), CfnLoader)
        props = resolve(template["Resources"]["ProbeRole"]["Properties"])
        expected = {
            "trust": DEPLOY / "iam/probe-trust-policy.json",
            f"replicanary-{side}-probe": DEPLOY / f"iam/{side}-probe-policy.json",
            f"replicanary-{side}-diagnosis": DEPLOY / f"iam/{side}-probe-diagnosis-policy.json",
        }
        got = {"trust": props["AssumeRolePolicyDocument"]}
        got.update({p["PolicyName"]: p["PolicyDocument"] for p in props["Policies"]})
        params = set(template["Parameters"])
        for name, path in expected.items():
            want = json.loads(path.read_text())
            if name not in got:
                errors.append(f"{side}-probe-role.yaml: no policy {name}")
            elif normalise(got[name]) != normalise(want):
                errors.append(f"{side}-probe-role.yaml: {name} differs from {path.relative_to(ROOT)}")
            placeholders = set(re.findall(r"\$\{(\w+)\}", path.read_text()))
            if not placeholders <= params:
                errors.append(f"{path.name}: placeholders {placeholders - params} are no parameter of "
                              f"{side}-probe-role.yaml")
        if not errors:
            print(f"ok: deploy/iam/cloudformation/{side}-probe-role.yaml = deploy/iam/{side}-probe*.json "
                  f"+ probe-trust-policy.json")
    return errors


def slug(heading: str) -> str:
    """GitHub's heading anchor."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def check_runbook() -> list[str]:
    errors = []
    text = (ROOT / "docs/runbook.md").read_text()
    anchors = {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}
    rules = yaml.safe_load((DEPLOY / "prometheus/replicanary.rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    for rule in alerts:
        for key in ("summary", "description", "runbook_url"):
            if not rule.get("annotations", {}).get(key):
                errors.append(f"{rule['alert']}: no {key} annotation")
        if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            errors.append(f"{rule['alert']}: severity must be critical, warning or info")
        url = rule.get("annotations", {}).get("runbook_url", "")
        if "docs/runbook.md#" not in url:
            errors.append(f"{rule['alert']}: runbook_url {url!r} is not into docs/runbook.md")
        elif url.split("#", 1)[1] not in anchors:
            errors.append(f"{rule['alert']}: docs/runbook.md has no heading for #{url.split('#', 1)[1]}")
    for outcome in OUTCOMES:
        if f"verdict-{outcome}" not in anchors:
            errors.append(f"docs/runbook.md: no section 'Verdict `{outcome}`'")
    # Every finding the daemon can name (src/diagnose/mod.rs FINDING_IDS) has a section.
    ids_block = (ROOT / "src/diagnose/mod.rs").read_text().split("pub const FINDING_IDS", 1)[1].split("];", 1)[0]
    for finding in re.findall(r'"([a-z_:A-Z]+)"', ids_block):
        if slug(f"Finding `{finding}`") not in anchors:
            errors.append(f"docs/runbook.md: no section 'Finding `{finding}`'")
    if not errors:
        print(f"ok: docs/runbook.md has a section for each of {len(alerts)} alerts (runbook_url anchors), "
              f"{len(OUTCOMES)} verdicts and every finding")
    return errors


def main(argv) -> int:
    what = argv[1] if len(argv) > 1 else ""
    if what == "configmap":
        doc = yaml.safe_load((DEPLOY / "kubernetes/configmap.yaml").read_text())
        sys.stdout.write(doc["data"]["config.yaml"])
        return 0
    checks = {"iam": check_iam, "runbook": check_runbook}
    if what not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    errors = checks[what]()
    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
