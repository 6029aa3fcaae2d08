#!/usr/bin/env python3
"""Static checks of deploy/ (run by deploy/test.sh with deploy/.venv's python):

- iam:      the CloudFormation templates' policies are exactly the deploy/iam/*.json files
            (the ones the lab provisions the probe roles from), in both forms of each
            template: one bucket and account-wide (bucket "*", for discovery), and both
            forms grant the same actions; the IAM policies shown in Markdown are the files;
            deploy/README.md's table of calls names every operation src/aws/ makes (and no
            other), each row's action is granted by the statements it names, and every
            action the policies grant is needed by a row;
- runbook:  every alert's runbook_url points at a heading of docs/runbook.md, and the
            runbook has a section for every alert, every verdict and every finding id (the
            FINDINGS table of src/model/finding.rs);
- kubernetes OUT [KUBECTL_DIR]: renders both variants of deploy/kubernetes (the HA pair,
            kustomization.yaml, and the shards, sharded/) into OUT/pair.yaml and
            OUT/sharded.yaml (the core kinds, for kubernetes-validate) and checks their shape:
            the pair is 2+ unsharded instances, the StatefulSet's shard count equals its
            replicas and its index comes from the pod-index label, the pod templates agree,
            the selectors of the Service, PodDisruptionBudget and ServiceMonitor match.
            With KUBECTL_DIR (pair.yaml and sharded.yaml from `kubectl kustomize`), the
            rendering here must equal kubectl's;
- queries OUT: every metric name the alert rules and the dashboard use is one replicanary
            exports (the METRICS contract below; tests/e2e_deploy_metrics.rs checks the same
            against a running daemon), every verdict has its colour on the dashboard, and the
            dashboard's queries go to OUT/dashboard.rules.yml for `promtool check rules`;
- configmap: prints the configuration embedded in deploy/kubernetes/common/configmap.yaml
            (deploy/test.sh feeds it to `replicanary validate`).

    deploy/.venv/bin/python deploy/checks.py iam|runbook|configmap
    deploy/.venv/bin/python deploy/checks.py kubernetes OUT [KUBECTL_DIR]
    deploy/.venv/bin/python deploy/checks.py queries OUT
"""
import base64
import json
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
OUTCOMES = ["credentials_failed", "source_write_failed", "not_replicated", "replication_failed",
            "replication_timeout", "replica_missing", "unreadable", "undecryptable", "content_mismatch",
            "not_kms_encrypted", "wrong_kms_key", "error", "ok"]

# Every metric replicanary exports (histograms by their base name): the contract the alert
# rules and the dashboard are written against.
METRICS = {
    "replicanary_probe_success", "replicanary_probes_total", "replicanary_replication_latency_seconds",
    "replicanary_last_replication_latency_seconds", "replicanary_replica_kms_key_match",
    "replicanary_replica_readable", "replicanary_last_probe_timestamp_seconds",
    "replicanary_last_success_timestamp_seconds", "replicanary_probe_duration_seconds",
    "replicanary_aws_requests_total", "replicanary_canaries_outstanding", "replicanary_cleanup_failures_total",
    "replicanary_build_info", "replicanary_finding", "replicanary_canaries_retained",
    "replicanary_config_last_reload_successful", "replicanary_config_last_reload_success_timestamp_seconds",
    "replicanary_discovered_replications", "replicanary_discovery_errors_total", "replicanary_shard_info",
    "replicanary_probe_interval_seconds", "replicanary_scheduling_lag_seconds", "replicanary_verdict",
    # readers
    "replicanary_reader_probes_total", "replicanary_reader_readable", "replicanary_reader_verdict",
    "replicanary_unmonitored_replication_rules",
}
# The background scan's series (scan: in the configuration).
METRICS |= {"replicanary_scan_objects", "replicanary_scan_last_complete_timestamp_seconds",
            "replicanary_scan_progress_objects"}
HISTOGRAMS = {"replicanary_replication_latency_seconds", "replicanary_probe_duration_seconds",
              "replicanary_scheduling_lag_seconds"}

# Every finding id the daemon can name (label `finding` of replicanary_finding). Must be the


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
    files), a Ref to a parameter as its ${Name} placeholder, Fn::If as the branch
    `conditions` picks (a condition not named is true: every optional part present),
    AWS::NoValue removed."""
    conditions = conditions or {}
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"]
        if set(value) == {"Ref"} and value != NO_VALUE:
            return "${%s}" % value["Ref"]
        if set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            return resolve(if_true if conditions.get(name, True) else if_false, conditions)
        return {k: resolve(v, conditions) for k, v in value.items()}
    if isinstance(value, list):
        return [r for r in (resolve(v, conditions) for v in value) if r != NO_VALUE]
    return value


def normalise(doc):
    """Policy documents compare equal whatever the JSON/YAML spelling: a single Action is a
    list; a document given as JSON text (a !Sub of the whole document) is parsed."""
    doc = json.loads(doc if isinstance(doc, str) else json.dumps(doc))
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
    return errors + check_base_role() + check_snippets() + check_calls() + check_forms()


# The identity policies of each role; trust policies grant nothing to the role itself.
ROLE_FILES = {
    "source": ("source-probe-policy.json", "source-probe-account-policy.json",
               "source-probe-diagnosis-policy.json", "source-probe-discovery-policy.json"),
    "destination": ("destination-probe-policy.json", "destination-probe-account-policy.json",
                    "destination-probe-diagnosis-policy.json", "destination-probe-discovery-policy.json"),
    "base": ("base-role-policy.json",),
}
CALLS_BEGIN = "<!-- BEGIN iam-calls: checked by deploy/checks.py iam -->"
CALLS_END = "<!-- END iam-calls -->"


def code_operations(src: Path) -> set[str]:
    """Every AWS operation src/aws/ makes: the names its calls are counted under
    (`self.done("Op", ...)` in s3.rs, `aws_request(..., "Op", ...)` for STS)."""
    ops = set()
    for rs in sorted((src / "aws").glob("*.rs")):
        text = rs.read_text()
        ops |= set(re.findall(r'self\.done\(\s*"(\w+)"', text))
        ops |= set(re.findall(r'aws_request\(\s*[^,()]+,\s*[^,()]+,\s*"(\w+)"', text))
    return ops


def policy_grants() -> set[tuple[str, str, str]]:
    """(role, Sid, action) of every statement of every role's identity policies."""
    grants = set()
    for role, files in ROLE_FILES.items():
        for f in files:
            for st in normalise(json.loads((DEPLOY / "iam" / f).read_text()))["Statement"]:
                grants |= {(role, st["Sid"], a) for a in st["Action"]}
    return grants


def calls_table() -> list[dict]:
    """The rows of deploy/README.md's table of calls: operation, roles, action, Sids."""
    text = (DEPLOY / "README.md").read_text()
    if CALLS_BEGIN not in text or CALLS_END not in text:
        raise ValueError(f"deploy/README.md has no {CALLS_BEGIN} ... {CALLS_END} table")
    block = text.split(CALLS_BEGIN, 1)[1].split(CALLS_END, 1)[0]
    rows = []
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6:
            raise ValueError(f"deploy/README.md, table of calls: expected 6 cells: {line}")
        op, roles, _call, action, sids, _why = cells
        rows.append({"op": op.strip("`"), "roles": {r.strip() for r in roles.split(",")},
                     "action": action.strip("`"), "sids": set(re.findall(r"`(\w+)`", sids)), "line": line})
    return rows


def check_calls(src: Path | None = None) -> list[str]:
    """The table of calls in deploy/README.md against the code and the policies: every
    operation src/aws/ makes has a row and every row's operation is made; every row's
    action is granted to its roles by the statements it names; every action the policies
    grant is in a row."""
    errors = []
    ops = code_operations(src or ROOT / "src")
    rows = calls_table()
    in_table = {r["op"] for r in rows}
    for op in sorted(ops - in_table):
        errors.append(f"deploy/README.md, table of calls: src/aws/ calls {op}, which has no row")
    for op in sorted(in_table - ops):
        errors.append(f"deploy/README.md, table of calls: {op} has a row, but src/aws/ never calls it")
    grants = policy_grants()
    covered = set()
    for r in rows:
        if not r["roles"] <= set(ROLE_FILES):
            errors.append(f"table of calls: unknown role in {r['line']}")
            continue
        for sid in r["sids"]:
            hits = {(role, sid, r["action"]) for role in r["roles"]} & grants
            if not hits:
                errors.append(f"table of calls: no statement {sid} of {'/'.join(sorted(r['roles']))} "
                              f"grants {r['action']} ({r['op']})")
            covered |= hits
        for role in r["roles"]:
            if not any((role, sid, r["action"]) in grants for sid in r["sids"]):
                errors.append(f"table of calls: {r['op']} names {role}, but none of its statements "
                              f"{sorted(r['sids'])} grants {r['action']}")
    for role, sid, action in sorted(grants - covered):
        errors.append(f"deploy/iam: {role} statement {sid} grants {action}, which no row of the table of "
                      f"calls in deploy/README.md needs (drop it, or add the call that needs it)")
    if not errors:
        print(f"ok: deploy/README.md's table of calls: {len(ops)} operations of src/aws/, each with the actions "
              f"it needs; all {len(grants)} (role, statement, action) grants of deploy/iam/ accounted for")
    return errors


def check_forms() -> list[str]:
    """The account-wide probe policies grant, statement by statement, the same actions as
    the one-bucket ones (only the resources differ): the lab proves the one-bucket form."""
    errors = []
    for side in ("source", "destination"):
        forms = {}
        for f in (f"{side}-probe-policy.json", f"{side}-probe-account-policy.json"):
            doc = normalise(json.loads((DEPLOY / "iam" / f).read_text()))
            forms[f] = {st["Sid"]: sorted(st["Action"]) for st in doc["Statement"]}
        one, wide = forms.values()
        if one != wide:
            errors.append(f"deploy/iam/{side}-probe-account-policy.json grants other actions than "
                          f"{side}-probe-policy.json: {wide} vs {one}")
    if not errors:
        print("ok: the account-wide probe policies grant the same actions as the one-bucket ones")
    return errors


SNIPPET = re.compile(r"```json\n(.*?)\n```", re.S)
MARKER = re.compile(r"<!-- (deploy/iam/[\w.-]+\.json) -->\n$")


def markdown_files() -> list[Path]:
    skip = {".git", ".venv", "target", "node_modules"}
    return sorted(p for p in ROOT.rglob("*.md") if not skip & set(p.relative_to(ROOT).parts))


def check_snippets() -> list[str]:
    """Every IAM policy shown in a Markdown file is a deploy/iam/ file, word for word: the
    block follows a `<!-- deploy/iam/NAME.json -->` line and its text is that file's."""
    errors, shown = [], []
    for md in markdown_files():
        text = md.read_text()
        for m in SNIPPET.finditer(text):
            marker = MARKER.search(text, 0, m.start())
            line = text.count("\n", 0, m.start()) + 1
            where = f"{md.relative_to(ROOT)}:{line}"
            if marker is None or marker.end() != m.start():
                if '"Statement"' in m.group(1):
                    errors.append(f"{where}: a policy snippet without a <!-- deploy/iam/NAME.json --> line "
                                  f"before it (only copies of deploy/iam/ files may be shown)")
                continue
            path = ROOT / marker.group(1)
            if not path.is_file():
                errors.append(f"{where}: {marker.group(1)} does not exist")
            elif m.group(1).strip() != path.read_text().strip():
                errors.append(f"{where}: the snippet differs from {marker.group(1)} (copy the file in)")
            else:
                shown.append(where)
    if not errors:
        print(f"ok: {len(shown)} IAM snippets in Markdown are deploy/iam/ files word for word ({', '.join(shown)})")
    return errors


# The base role's template in its two trust modes. Trust mode -> the trust policy file.
BASE_ROLE_TRUST = {
    "irsa": ({"Irsa": True}, "base-role-trust-irsa.json"),
    "pod-identity": ({"Irsa": False}, "base-role-trust-pod-identity.json"),
}


def check_base_role() -> list[str]:
    """cloudformation/base-role.yaml = base-role-policy.json + the trust of its mode."""
    errors = []
    name = "base-role.yaml"
    template = yaml.load((DEPLOY / "iam/cloudformation" / name).read_text(), CfnLoader)
    params = set(template["Parameters"]) | {"AWS::AccountId"}
    resources = template["Resources"]
    if list(resources) != ["BaseRole"]:
        errors.append(f"{name}: expected one resource, BaseRole (got {sorted(resources)})")
        return errors
    for mode, (conditions, trust_file) in BASE_ROLE_TRUST.items():
        props = resolve(resources["BaseRole"]["Properties"], conditions)
        expected = {"trust": trust_file, "replicanary-base": "base-role-policy.json"}
        got = {"trust": props["AssumeRolePolicyDocument"]}
        got.update({p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])})
        if set(got) != set(expected):
            errors.append(f"{name} ({mode}): policies {sorted(got)}, expected {sorted(expected)}")
        for policy, file in expected.items():
            path = DEPLOY / "iam" / file
            if policy in got and normalise(got[policy]) != normalise(json.loads(path.read_text())):
                errors.append(f"{name} ({mode}): {policy} differs from {path.relative_to(ROOT)}")
            placeholders = set(re.findall(r"\$\{([\w:]+)\}", path.read_text()))
            if not placeholders <= params:
                errors.append(f"{file}: placeholders {placeholders - params} are no parameter of {name}")
    # Whatever the mode, the base role may do one thing: assume roles.
    policy = json.loads((DEPLOY / "iam/base-role-policy.json").read_text())
    actions = {a for st in normalise(policy)["Statement"] for a in st["Action"]}
    if actions != {"sts:AssumeRole"}:
        errors.append(f"base-role-policy.json grants {sorted(actions)}: the base role needs sts:AssumeRole only")
    if not errors:
        print(f"ok: deploy/iam/cloudformation/{name} = deploy/iam/base-role-policy.json (sts:AssumeRole only) "
              f"+ base-role-trust-{{irsa,pod-identity}}.json")
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
    # Every finding id the daemon can give (the FINDINGS table of src/model/finding.rs, the
    # one list) has a section, and no section is left for a finding that no longer exists.
    finding_ids = rust_finding_ids()
    for finding in finding_ids:
        if slug(f"Finding `{finding}`") not in anchors:
            errors.append(f"docs/runbook.md: no section 'Finding `{finding}`'")
    for m in re.finditer(r"^#{1,6} Finding `([^`]+)`", text, re.M):
        if m.group(1) not in finding_ids:
            errors.append(f"docs/runbook.md: section for unknown finding {m.group(1)!r}")
    if not errors:
        print(f"ok: docs/runbook.md has a section for each of {len(alerts)} alerts (runbook_url anchors), "
              f"{len(OUTCOMES)} verdicts and {len(finding_ids)} findings (src/model/finding.rs FINDINGS)")
    return errors


def rust_finding_ids() -> list[str]:
    """The labels of `pub const FINDINGS: &[FindingSpec] = &[row(F::Id, "label", ...), ...];`."""
    src = (ROOT / "src/model/finding.rs").read_text()
    block = src.split("pub const FINDINGS", 1)[1].split("];", 1)[0]
    block = re.sub(r"//[^\n]*", "", block)
    ids = re.findall(r'row\(\s*F::\w+,\s*"([^"\\]+)"', block)
    if not ids:
        raise SystemExit("src/model/finding.rs: no rows found in FINDINGS")
    return ids


def check_queries(out: Path) -> list[str]:
    errors = []
    exported = set(METRICS) | {f"{h}_{s}" for h in HISTOGRAMS for s in ("bucket", "sum", "count")}
    dashboard_text = (DEPLOY / "grafana/replicanary.json").read_text()
    for path in ("grafana/replicanary.json", "prometheus/replicanary.rules.yml"):
        # as tests/e2e_deploy_metrics.rs reads them: every replicanary_ identifier
        used = set(re.findall(r"(?<![\w])replicanary_\w+", (DEPLOY / path).read_text()))
        for name in sorted(used - exported):
            errors.append(f"deploy/{path} uses {name}, which replicanary does not export")
    dashboard = json.loads(dashboard_text)
    rules = []
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            expr = t["expr"]
            for var, value in (("$replication", ".*"), ("$destination", ".*"), ("$__rate_interval", "5m"),
                               ("$__range", "1h")):
                expr = expr.replace(var, value)
            rules.append({"record": f"dashboard:panel_{panel['id']}_{t['refId']}", "expr": expr})
    out.mkdir(parents=True, exist_ok=True)
    (out / "dashboard.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]},
                                                            sort_keys=False, width=1000))
    # Every verdict has its colour where verdicts are listed.
    for title in ("Standing verdict", "Verdict history"):
        panel = next((p for p in dashboard["panels"] if p["title"] == title), None)
        text = json.dumps(panel)
        for outcome in OUTCOMES:
            if panel is None or not re.search(rf"[\": ]{outcome}[$\"]", text):
                errors.append(f"dashboard: panel {title!r} has no colour for verdict {outcome}")
    if not errors:
        print(f"ok: the rules and the dashboard query only exported metrics; every verdict coloured; "
              f"{len(rules)} dashboard queries written for promtool")
    return errors


# -- Kubernetes -------------------------------------------------------------------------

K8S = DEPLOY / "kubernetes"
# The kinds kubernetes-validate has schemas for (the Prometheus Operator's have none).
CORE_API_VERSIONS = ("v1", "apps/v1", "policy/v1")
POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"


def render(directory: Path) -> list[dict]:
    """The documents of a kustomization, for the subset of kustomize this repository uses:
    `resources` (files, and directories with their own kustomization.yaml), nothing else."""
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kust) - {"apiVersion", "kind", "resources"}
    if unsupported:
        raise ValueError(f"{directory / 'kustomization.yaml'}: {sorted(unsupported)} not rendered by checks.py")
    docs = []
    for res in kust["resources"]:
        path = (directory / res).resolve()
        if not path.is_relative_to(directory.resolve()) and not (path / "kustomization.yaml").exists():
            raise ValueError(f"{directory}: {res} is outside the kustomization (kustomize refuses it)")
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def containers_env(pod_template) -> dict:
    return {e["name"]: e for c in pod_template["spec"]["containers"] for e in c.get("env", [])}


def subset(a: dict, b: dict) -> bool:
    return a.items() <= b.items()


def check_common(variant: str, docs: list[dict], pod_template: dict) -> list[str]:
    errors = []
    pod_labels = pod_template["metadata"]["labels"]
    (svc,) = by_kind(docs, "Service")
    (sm,) = by_kind(docs, "ServiceMonitor")
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    if not subset(svc["spec"]["selector"], pod_labels):
        errors.append(f"{variant}: the Service does not select the pods")
    if not subset(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]):
        errors.append(f"{variant}: the ServiceMonitor does not select the Service")
    if not {e["port"] for e in sm["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}:
        errors.append(f"{variant}: a ServiceMonitor endpoint port is not a port of the Service")
    if not subset(pdb["spec"]["selector"]["matchLabels"], pod_labels):
        errors.append(f"{variant}: the PodDisruptionBudget does not select the pods")
    if pdb["spec"].get("maxUnavailable") != 1:
        errors.append(f"{variant}: the PodDisruptionBudget should allow one pod down at a time (maxUnavailable: 1)")
    if len(by_kind(docs, "PrometheusRule")) != 1:
        errors.append(f"{variant}: no PrometheusRule")
    errors += check_web(variant, docs, pod_template, sm)
    return errors


def check_web(variant: str, docs: list[dict], pod_template: dict, sm: dict) -> list[str]:
    """TLS and basic auth wired end to end: --web.config.file names a file of a mounted
    Secret, its certificate and key are mounted files, the probes speak HTTPS with the
    credentials of a configured user, and the ServiceMonitor scrapes over TLS with a
    configured user's credentials."""
    errors = []
    (container,) = pod_template["spec"]["containers"]
    args = dict(a.split("=", 1) for a in container.get("args", []) if a.startswith("--") and "=" in a)
    web_file = args.get("--web.config.file")
    if web_file is None:
        return [f"{variant}: no --web.config.file: the endpoints would be plain HTTP without auth"]
    volumes = {v["name"]: v for v in pod_template["spec"].get("volumes", [])}
    secrets = {d["metadata"]["name"]: d for d in by_kind(docs, "Secret")}

    def mounted(path: str):
        """(Secret name, key) of the mounted file at `path`, or None."""
        for m in container.get("volumeMounts", []):
            prefix = m["mountPath"].rstrip("/") + "/"
            if not path.startswith(prefix):
                continue
            secret = volumes.get(m["name"], {}).get("secret")
            if secret is None:
                return None
            rel = path[len(prefix):]
            items = {i["path"]: i["key"] for i in secret.get("items", [])} or None
            key = items.get(rel) if items is not None else rel
            return (secret["secretName"], key) if key else None
        return None

    where = mounted(web_file)
    if where is None or where[0] not in secrets or where[1] not in secrets[where[0]].get("stringData", {}):
        return [f"{variant}: --web.config.file={web_file} is not a key of a Secret in the kustomization, mounted there"]
    web_secret = secrets[where[0]]
    web = yaml.safe_load(web_secret["stringData"][where[1]]) or {}
    tls = web.get("tls_server_config") or {}
    users = web.get("basic_auth_users") or {}
    if not tls or not users:
        errors.append(f"{variant}: the web configuration should set tls_server_config and basic_auth_users")
    for field in ("cert_file", "key_file"):
        if tls.get(field) and mounted(tls[field]) is None:
            errors.append(f"{variant}: tls_server_config.{field} {tls[field]} is not a mounted Secret file")
    for kind in ("livenessProbe", "readinessProbe"):
        get = container.get(kind, {}).get("httpGet", {})
        headers = {h["name"].lower(): h["value"] for h in get.get("httpHeaders", [])}
        user = None
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                user = base64.b64decode(auth[len("Basic "):]).decode().split(":", 1)[0]
            except ValueError:
                user = None
        if get.get("scheme") != "HTTPS" or user not in users:
            errors.append(f"{variant}: the {kind} must use scheme HTTPS and an Authorization header of a "
                          f"basic_auth_users user (got scheme {get.get('scheme')!r}, user {user!r})")
    for ep in sm["spec"]["endpoints"]:
        tls_config = ep.get("tlsConfig", {})
        basic = ep.get("basicAuth", {})
        refs = [tls_config.get("ca", {}).get("secret", {}), basic.get("username", {}), basic.get("password", {})]
        if ep.get("scheme") != "https" or not all(r.get("name") and r.get("key") for r in refs):
            errors.append(f"{variant}: the ServiceMonitor endpoint must scrape with scheme https, tlsConfig.ca "
                          f"and basicAuth from Secrets")
            continue
        user_ref = basic["username"]
        secret = secrets.get(user_ref["name"], {})
        username = secret.get("stringData", {}).get(user_ref["key"])
        if username not in users:
            errors.append(f"{variant}: the ServiceMonitor's basicAuth user {username!r} is not in basic_auth_users")
        if basic["password"]["name"] not in secrets:
            errors.append(f"{variant}: the ServiceMonitor's password Secret is not in the kustomization")
    return errors


def check_kubernetes(out: Path, kubectl_dir: Path | None) -> list[str]:
    errors = []
    variants = {"pair": render(K8S), "sharded": render(K8S / "sharded")}
    out.mkdir(parents=True, exist_ok=True)
    for name, docs in variants.items():
        core = [d for d in docs if d["apiVersion"] in CORE_API_VERSIONS]
        (out / f"{name}.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
        if kubectl_dir is not None:
            theirs = [d for d in yaml.safe_load_all((kubectl_dir / f"{name}.yaml").read_text()) if d]
            ours_by_id = {(d["kind"], d["metadata"]["name"]): d for d in docs}
            theirs_by_id = {(d["kind"], d["metadata"]["name"]): d for d in theirs}
            if len(ours_by_id) != len(docs) or ours_by_id != theirs_by_id:
                errors.append(f"{name}: rendered here differs from `kubectl kustomize`: "
                              f"{sorted(set(ours_by_id) ^ set(theirs_by_id)) or 'same kinds, other content'}")

    # The HA pair: a Deployment of two or more unsharded instances.
    pair = variants["pair"]
    workloads = by_kind(pair, "Deployment") + by_kind(pair, "StatefulSet")
    if [w["kind"] for w in workloads] != ["Deployment"]:
        return errors + [f"pair: expected exactly one Deployment, got {[w['kind'] for w in workloads]}"]
    (dep,) = workloads
    if dep["spec"]["replicas"] < 2:
        errors.append("pair: the Deployment should run 2 instances (an HA pair)")
    dep_pod = dep["spec"]["template"]
    if any(n.startswith("REPLICANARY_SHARD") for n in containers_env(dep_pod)) or \
            any(a.startswith("--shard") for c in dep_pod["spec"]["containers"] for a in c.get("args", [])):
        errors.append("pair: the HA pair must be unsharded (no REPLICANARY_SHARD_* env, no --shard-* args)")
    errors += check_common("pair", pair, dep_pod)

    # The shards: a StatefulSet whose shard count is its replicas, index from the pod index.
    sharded = variants["sharded"]
    workloads = by_kind(sharded, "Deployment") + by_kind(sharded, "StatefulSet")
    if [w["kind"] for w in workloads] != ["StatefulSet"]:
        return errors + [f"sharded: expected exactly one StatefulSet, got {[w['kind'] for w in workloads]}"]
    (sts,) = workloads
    pod = sts["spec"]["template"]
    env = containers_env(pod)
    count = env.get("REPLICANARY_SHARD_COUNT", {}).get("value")
    if count is None or not count.isdigit() or int(count) != sts["spec"]["replicas"]:
        errors.append(f"sharded: REPLICANARY_SHARD_COUNT ({count!r}) must equal the StatefulSet's replicas "
                      f"({sts['spec']['replicas']})")
    index_ref = env.get("REPLICANARY_SHARD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if index_ref != POD_INDEX:
        errors.append(f"sharded: REPLICANARY_SHARD_INDEX must come from the downward API, fieldPath {POD_INDEX}")
    if any(a.startswith("--shard") for c in pod["spec"]["containers"] for a in c.get("args", [])):
        errors.append("sharded: --shard-* args would override the env wiring")
    if not subset(sts["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]):
        errors.append("sharded: the StatefulSet's selector does not match its pod labels")
    services = {s["metadata"]["name"]: s for s in by_kind(sharded, "Service")}
    svc = services.get(sts["spec"].get("serviceName"))
    if svc is None or svc["spec"].get("clusterIP") != "None":
        errors.append("sharded: the StatefulSet's serviceName must name a headless Service (clusterIP: None)")
    # Same pod as the pair's, apart from the shard variables.
    stripped = json.loads(json.dumps(pod))
    for c in stripped["spec"]["containers"]:
        c["env"] = [e for e in c.get("env", []) if not e["name"].startswith("REPLICANARY_SHARD")]
    if stripped != dep_pod:
        errors.append("sharded: the StatefulSet's pod template differs from the Deployment's beyond the "
                      "REPLICANARY_SHARD_* variables (keep deployment.yaml and sharded/statefulset.yaml in step)")
    errors += check_common("sharded", sharded, pod)

    # The generated PrometheusRule is also where it always was (tests read it there).
    link = K8S / "prometheusrule.yaml"
    if not link.exists() or link.resolve() != (K8S / "common/prometheusrule.yaml").resolve():
        errors.append("deploy/kubernetes/prometheusrule.yaml must be a symlink to common/prometheusrule.yaml")
    if not errors:
        print(f"ok: HA pair = Deployment of {dep['spec']['replicas']} unsharded instances; shards = StatefulSet "
              f"of {sts['spec']['replicas']} = REPLICANARY_SHARD_COUNT, index from {POD_INDEX}, same pod "
              f"template; Service/PDB/ServiceMonitor selectors match"
              + ("; same as `kubectl kustomize`" if kubectl_dir is not None else ""))
    return errors


def main(argv) -> int:
    what = argv[1] if len(argv) > 1 else ""
    if what == "configmap":
        doc = yaml.safe_load((DEPLOY / "kubernetes/common/configmap.yaml").read_text())
        sys.stdout.write(doc["data"]["config.yaml"])
        return 0
    checks = {"iam": check_iam, "runbook": check_runbook}
    if what == "queries" and len(argv) == 3:
        errors = check_queries(Path(argv[2]))
    elif what == "kubernetes" and len(argv) in (3, 4):
        errors = check_kubernetes(Path(argv[2]), Path(argv[3]) if len(argv) == 4 else None)
    elif what not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    else:
        errors = checks[what]()
    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
