#!/usr/bin/env python3
"""Static checks of deploy/ (run by deploy/test.sh with deploy/.venv's python):

- iam:      the CloudFormation templates' policies are exactly the deploy/iam/*.json files
            (the ones the lab provisions the probe roles from), in both forms of each
            template: one bucket and account-wide (bucket "*", for discovery);
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


NO_VALUE = {"Ref": "AWS::NoValue"}


def resolve(value, conditions=None):
    """Fn::Sub strings as their template text (the same ${Name} placeholders as the JSON
    files), Fn::If as the branch `conditions` picks (a condition not named is true: every
    optional part present), AWS::NoValue removed."""
    conditions = conditions or {}
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"]
        if set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            return resolve(if_true if conditions.get(name, True) else if_false, conditions)
        return {k: resolve(v, conditions) for k, v in value.items()}
    if isinstance(value, list):
        return [r for r in (resolve(v, conditions) for v in value) if r != NO_VALUE]
    return value


def normalise(doc):
    """Policy documents compare equal whatever the JSON/YAML spelling: a single Action is a list."""
    doc = json.loads(json.dumps(doc))
    for st in doc["Statement"]:
        if isinstance(st.get("Action"), str):
            st["Action"] = [st["Action"]]
    return doc


# Each template in its two forms: one bucket (a replication written into the configuration)
# and account-wide (bucket "*": discovery, one StackSet for every account). Policy name ->
# the deploy/iam/ file it must equal.
IAM_FORMS = {
    "one bucket": ({"AccountWide": False}, "{side}-probe-policy.json"),
    "account-wide": ({"AccountWide": True}, "{side}-probe-account-policy.json"),
}


def check_iam() -> list[str]:
    errors = []
    for side in ("source", "destination"):
        name = f"{side}-probe-role.yaml"
        template = yaml.load((DEPLOY / "iam/cloudformation" / name).read_text(), CfnLoader)
        params = set(template["Parameters"])
        for form, (conditions, main_file) in IAM_FORMS.items():
            props = resolve(template["Resources"]["ProbeRole"]["Properties"], conditions)
            expected = {
                "trust": DEPLOY / "iam/probe-trust-policy.json",
                f"replicanary-{side}-probe": DEPLOY / "iam" / main_file.format(side=side),
                f"replicanary-{side}-diagnosis": DEPLOY / f"iam/{side}-probe-diagnosis-policy.json",
                f"replicanary-{side}-discovery": DEPLOY / f"iam/{side}-probe-discovery-policy.json",
            }
            got = {"trust": props["AssumeRolePolicyDocument"]}
            got.update({p["PolicyName"]: p["PolicyDocument"] for p in props["Policies"]})
            for policy, path in expected.items():
                want = json.loads(path.read_text())
                if policy not in got:
                    errors.append(f"{name} ({form}): no policy {policy}")
                elif normalise(got[policy]) != normalise(want):
                    errors.append(f"{name} ({form}): {policy} differs from {path.relative_to(ROOT)}")
                placeholders = set(re.findall(r"\$\{(\w+)\}", path.read_text()))
                if not placeholders <= params:
                    errors.append(f"{path.name}: placeholders {placeholders - params} are no parameter of {name}")
        if not errors:
            print(f"ok: deploy/iam/cloudformation/{name} = deploy/iam/{side}-probe{{,-account}}-policy.json "
                  f"(one bucket, account-wide) + {side}-probe-{{diagnosis,discovery}}-policy.json "
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
