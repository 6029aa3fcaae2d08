//! The IAM of `deploy/iam/`, proven against the lab (AUTH=true): the lab's `provision.py`
//! builds the probe roles from exactly those files (trust with `sts:ExternalId`, access
//! limited to the canary prefix), and replicanary gets `ok` with them.
//!
//! Then every action is shown to be needed, one at a time: for each action of the probe
//! policies (main, diagnosis, discovery; and of the base role's), a copy of a scenario is
//! provisioned whose role lacks that one action (`provision.py --drop-action`), and
//! replicanary is run on it — `check` and `audit`, `run` where only cleanup can tell
//! (Object Lock retention, the sweep of leftovers), and `discover` (account-wide roles,
//! one per copy) for the discovery policies. What differs from the same scenario with every action is the "necessity
//! table" in `deploy/README.md`; this test writes it and fails when the README's differs
//! (`UPDATE_IAM_TABLE=1` rewrites it). An action whose removal changes nothing here must
//! carry a note saying why it is kept (`NOTES`), or be removed from `deploy/iam/`.
//!
//! Every variant lives in one lab (its own suffix), provisioned in parallel; one `check`,
//! one `audit`, one daemon and one `discover` per discovery variant run them all at once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Daemon, Lab, Metrics, RootS3, check};

const EXTERNAL_ID: &str = "replicanary-e2e-external-id";

/// `replicanary check --format json` → (outcome, reason) of the one verdict.
fn verdict(config: &Path) -> (String, String, String) {
    let out = check(config, &["--format", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v = &report["verdicts"][0];
    let field = |name: &str| v[name].as_str().unwrap_or_default().to_owned();
    let code = v["aws_error"]["code"].as_str().unwrap_or("-").to_owned();
    (field("outcome"), field("reason"), code)
}

fn provision(lab: &Lab, tag: &str, extra: &[&str]) -> std::path::PathBuf {
    let suffix = format!("--suffix=-{tag}");
    let mut args = vec!["--external-id", EXTERNAL_ID, suffix.as_str()];
    args.extend_from_slice(extra);
    let config = lab.provision(&["healthy"], &args);
    // Each provisioning writes config-healthy.yaml: keep one per variant.
    let kept = config.with_file_name(format!("config-{tag}.yaml"));
    std::fs::rename(&config, &kept).expect("rename config");
    kept
}

#[test]
fn deploy_iam_probe_roles_with_external_id_give_ok() {
    let lab = Lab::start(&[]);
    let config = provision(&lab, "full", &[]);
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(
        text.contains(&format!("external_id: {EXTERNAL_ID}")),
        "{text}"
    );
    assert!(text.contains("canary_prefix: replicanary/"), "{text}");
    let (outcome, reason, code) = verdict(&config);
    assert_eq!(outcome, "ok", "{reason} ({code})");

    // The trust policy's sts:ExternalId condition is enforced: another id is refused.
    let wrong = config.with_file_name("config-wrong-external-id.yaml");
    std::fs::write(&wrong, text.replace(EXTERNAL_ID, "not-the-external-id")).expect("write config");
    let (outcome, reason, _) = verdict(&wrong);
    assert_eq!(outcome, "credentials_failed", "{reason}");
}

// ---- the necessity table -----------------------------------------------------------------

/// The policies whose every action must be needed, per role: the probe roles' main,
/// diagnosis and discovery policies and the base role's. (The account-wide forms grant the
/// same actions as the one-bucket ones, statement by statement: `checks.py iam`.)
const POLICY_FILES: [(&str, &str); 7] = [
    ("source", "source-probe-policy.json"),
    ("source", "source-probe-diagnosis-policy.json"),
    ("destination", "destination-probe-policy.json"),
    ("destination", "destination-probe-diagnosis-policy.json"),
    ("base", "base-role-policy.json"),
    ("source", "source-probe-discovery-policy.json"),
    ("destination", "destination-probe-discovery-policy.json"),
];
/// What one provisioned role is made of: the one-bucket files (with the base role's).
const ONE_BUCKET_FILES: &[&str] = &[
    "source-probe-policy.json",
    "source-probe-diagnosis-policy.json",
    "destination-probe-policy.json",
    "destination-probe-diagnosis-policy.json",
    "base-role-policy.json",
];
const DISCOVERY_FILES: &[&str] = &[
    "source-probe-discovery-policy.json",
    "destination-probe-discovery-policy.json",
];

/// Why an action is kept although removing it changes nothing in the lab.
const NOTES: &[(&str, &str, &str)] = &[
    ("source", "s3:GetObject", GET_OBJECT_NOTE),
    ("destination", "s3:GetObject", GET_OBJECT_NOTE),
];
const GET_OBJECT_NOTE: &str = "every read names a version id, which S3 authorises as \
    `s3:GetObjectVersion` (the [GetObject reference](https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): \
    with a `versionId`, \"the s3:GetObject permission is not required\"), and so does the lab; kept because \
    the [HeadObject reference](https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html) asks for \
    `s3:GetObject` for a HEAD (\"you need the relevant read object (or version) permission\"): whether a HEAD \
    with a version id needs it too is unverified, and it opens nothing more than `s3:GetObjectVersion` does";

/// One action of one statement of one policy file.
#[derive(Debug, Clone, PartialEq)]
struct Action {
    side: &'static str,
    file: &'static str,
    sid: String,
    action: String,
}

impl Action {
    fn id(&self) -> String {
        format!("{}:{}", self.side, self.action)
    }
}

/// Every action of [`POLICY_FILES`], in file order.
fn policy_actions() -> Vec<Action> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/iam");
    let mut found = Vec::new();
    for (side, file) in POLICY_FILES {
        let text = std::fs::read_to_string(dir.join(file)).expect("a deploy/iam file");
        let doc: Value = serde_json::from_str(&text).expect("policy JSON");
        for st in doc["Statement"].as_array().expect("Statement") {
            let sid = st["Sid"].as_str().expect("every statement has a Sid");
            let actions = match &st["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                other => panic!("{file}: Action {other}"),
            };
            for action in actions {
                found.push(Action {
                    side,
                    file,
                    sid: sid.to_owned(),
                    action,
                });
            }
        }
    }
    found
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// `check` and `audit` once.
    Once,
    /// `replicanary run` until every replication has a verdict (cleanup, sweeps).
    Run,
    /// `replicanary discover`, one per variant: account-wide roles (the StackSet's form)
    /// named for the variant, its source bucket opted in with a tag of its own.
    Discover,
}

/// Which actions a context takes away, one per variant.
enum Take {
    /// Every action of these files.
    Files(&'static [&'static str]),
    /// These (`side:action`, of the one-bucket files).
    Ids(&'static [&'static str]),
}

/// A scenario in which actions are taken away, one per variant, next to a baseline with all.
struct Context {
    label: &'static str,
    /// How the table names it.
    shown: &'static str,
    scenario: &'static str,
    mode: Mode,
    /// Source bucket with Object Lock (GOVERNANCE, 1 day).
    lock_source: bool,
    /// Canary-shaped leftovers with the marker planted in both buckets before the run.
    plant: bool,
    /// Every canary carries a tag (`canary_tags`, as for a rule with a tag filter).
    tagged: bool,
    /// The actions taken away, one per variant.
    actions: Take,
}

const CONTEXTS: &[Context] = &[
    Context {
        label: "healthy",
        shown: "healthy",
        scenario: "healthy",
        mode: Mode::Once,
        lock_source: false,
        plant: false,
        tagged: false,
        actions: Take::Files(ONE_BUCKET_FILES),
    },
    Context {
        label: "vanished",
        shown: "vanished",
        scenario: "vanished",
        mode: Mode::Once,
        lock_source: false,
        plant: false,
        tagged: false,
        actions: Take::Ids(&["destination:s3:ListBucket"]),
    },
    Context {
        label: "vanished-no-list",
        shown: "vanished-no-list",
        scenario: "vanished-no-list",
        mode: Mode::Once,
        lock_source: false,
        plant: false,
        tagged: false,
        actions: Take::Ids(&["destination:s3:ListBucketVersions"]),
    },
    Context {
        label: "locked",
        shown: "locked",
        scenario: "locked",
        mode: Mode::Once,
        lock_source: false,
        plant: false,
        tagged: false,
        actions: Take::Ids(&["destination:s3:GetObjectRetention"]),
    },
    Context {
        label: "tagged",
        shown: "healthy, tagged canaries",
        scenario: "healthy",
        mode: Mode::Once,
        lock_source: false,
        plant: false,
        tagged: true,
        actions: Take::Ids(&["source:s3:PutObjectTagging"]),
    },
    Context {
        label: "discovery",
        shown: "discovery of healthy",
        scenario: "healthy",
        mode: Mode::Discover,
        lock_source: false,
        plant: false,
        tagged: false,
        actions: Take::Files(DISCOVERY_FILES),
    },
    Context {
        label: "source-owned",
        shown: "source-owned",
        scenario: "source-owned",
        mode: Mode::Once,
        lock_source: false,
        plant: false,
        tagged: false,
        // Object Ownership is read only for a rule without an owner override.
        actions: Take::Ids(&["destination:s3:GetBucketOwnershipControls"]),
    },
    Context {
        label: "readers",
        shown: "readers",
        scenario: "readers",
        mode: Mode::Once,
        lock_source: false,
        plant: false,
        tagged: false,
        // The key policy is read only for a reader that KMS refused.
        actions: Take::Ids(&["destination:kms:GetKeyPolicy"]),
    },
    Context {
        label: "run-leftovers",
        shown: "healthy with leftovers",
        scenario: "healthy",
        mode: Mode::Run,
        lock_source: false,
        plant: true,
        tagged: false,
        actions: Take::Ids(&[
            "source:s3:ListBucketVersions",
            "source:s3:DeleteObjectVersion",
            "destination:s3:ListBucketVersions",
            "destination:s3:DeleteObjectVersion",
        ]),
    },
    Context {
        label: "run-locked",
        shown: "locked",
        scenario: "locked",
        mode: Mode::Run,
        lock_source: false,
        plant: false,
        tagged: false,
        actions: Take::Ids(&["destination:s3:GetObjectRetention"]),
    },
    Context {
        label: "run-source-locked",
        shown: "healthy, source locked",
        scenario: "healthy",
        mode: Mode::Run,
        lock_source: true,
        plant: false,
        tagged: false,
        actions: Take::Ids(&["source:s3:GetObjectRetention"]),
    },
];

/// One provisioned copy of a context's scenario: its baseline (`action: None`) or one
/// action taken away.
struct Variant {
    context: usize,
    action: Option<Action>,
    name: String,
}

impl Variant {
    /// Which replicanary process runs it: the one-shot commands as the base role, the
    /// base-role action's variant as a base role without it, the daemon, and one
    /// `discover` per discovery variant.
    fn group(&self) -> String {
        match (CONTEXTS[self.context].mode, &self.action) {
            (Mode::Run, _) => "run".to_owned(),
            (Mode::Discover, _) => format!("discover-{}", self.name),
            (Mode::Once, Some(a)) if a.side == "base" => "nobase".to_owned(),
            (Mode::Once, _) => "once".to_owned(),
        }
    }
}

fn variants(actions: &[Action]) -> Vec<Variant> {
    let mut out = Vec::new();
    for (i, c) in CONTEXTS.iter().enumerate() {
        out.push(Variant {
            context: i,
            action: None,
            name: format!("{}--all", c.label),
        });
        let taken: Vec<&Action> = match c.actions {
            Take::Files(files) => actions.iter().filter(|a| files.contains(&a.file)).collect(),
            Take::Ids(ids) => ids
                .iter()
                .map(|id| {
                    actions
                        .iter()
                        .find(|a| a.id() == *id && ONE_BUCKET_FILES.contains(&a.file))
                        .unwrap_or_else(|| panic!("{id} is in no file of deploy/iam/"))
                })
                .collect(),
        };
        for a in taken {
            out.push(Variant {
                context: i,
                action: Some(a.clone()),
                name: format!(
                    "{}--{}--{}--{}",
                    c.label,
                    a.side,
                    a.sid,
                    a.action.replace(':', "-")
                ),
            });
        }
    }
    out
}

/// What the Python side made: configurations per group, credentials per base role, and
/// per variant its buckets and destination name.
struct World {
    configs: BTreeMap<String, PathBuf>,
    env: BTreeMap<String, Vec<(String, String)>>,
    buckets: BTreeMap<String, (String, String, String)>,
}

/// The key of the leftover planted in a variant's source (`aa`) or destination (`bb`) bucket.
fn planted_key(name: &str, side: &str) -> String {
    let tail = if side == "source" { "aa" } else { "bb" };
    format!("replicanary/{name}/20200101T000000Z-00000000000000{tail}")
}

const PROVISION: &str = r#"
import hashlib, json, os, sys
import yaml
import provision as p
spec = json.load(open(sys.argv[1]))
ep = os.environ["ENDPOINT"]
roles = {"base": p.create_base_role(ep, "replicanary-base"),
         "nobase": p.create_base_role(ep, "replicanary-base-without-assume", drop_actions=["sts:AssumeRole"])}
variants = [p.Variant(v["name"], v["scenario"], v["suffix"], drop_actions=v["drop_actions"],
                      trusted_principal=roles["nobase" if v["group"] == "nobase" else "base"],
                      source_retention_days=v["lock_days"], settings=v["settings"]) for v in spec["variants"]]
worlds = p.provision_variants(ep, variants, external_id=spec["external_id"])
out = {"env": {k: p.assume(ep, arn) for k, arn in roles.items()}, "configs": {}, "buckets": {}}
for group in sorted({v["group"] for v in spec["variants"] if not v["discover"]}):
    names = [v["name"] for v in spec["variants"] if v["group"] == group]
    path = os.path.join(spec["dir"], f"iam-{group}.yaml")
    with open(path, "w") as fh:
        fh.write(p.render_config(p.merge_worlds(worlds[n] for n in names)))
    out["configs"][group] = path
src, dst = p.Account(ep, p.SOURCE_ACCOUNT), p.Account(ep, p.DEST_ACCOUNT)
for v in spec["variants"]:
    if not v["discover"]:
        continue
    # Discovery: account-wide roles of the variant's own name, minus the action, and the
    # variant's source bucket opted in with a tag only this variant's discovery looks for.
    n, tag = v["name"], v["suffix"].strip("-")
    for side, account in (("source", p.SOURCE_ACCOUNT), ("destination", p.DEST_ACCOUNT)):
        drop = [a.split(":", 1)[1] for a in v["discover_drop"] if a.split(":", 1)[0] == side]
        p.create_account_wide_probe_role(ep, side, account, f"replicanary-{side}-{tag}", roles["base"],
                                         spec["external_id"], drop_actions=drop)
    src.s3.put_bucket_tagging(Bucket=worlds[n].scenarios[n].source_bucket,
                              Tagging={"TagSet": [{"Key": "replicanary-iam", "Value": tag}]})
    config = {"defaults": {"canary_prefix": "replicanary/"}, "aws": {"endpoint_url": ep, "force_path_style": True},
              "discovery": {"regions": [p.REGION], "source_accounts": [p.SOURCE_ACCOUNT],
                            "source_role_arn": f"arn:aws:iam::{{account}}:role/replicanary-source-{tag}",
                            "destination_role_arn": f"arn:aws:iam::{{account}}:role/replicanary-destination-{tag}",
                            "external_id": spec["external_id"],
                            "bucket_tag": {"key": "replicanary-iam", "value": tag}}}
    path = os.path.join(spec["dir"], f"iam-discover-{n}.yaml")
    with open(path, "w") as fh:
        fh.write(yaml.safe_dump(config))
    out["configs"][f"discover-{n}"] = path
for v in spec["variants"]:
    sc = worlds[v["name"]].scenarios[v["name"]]
    d = sc.destinations[0]
    out["buckets"][v["name"]] = [sc.source_bucket, d.bucket, d.name]
    body = b"a canary left behind by a crash"
    meta = {"replicanary": "canary-v1", "replicanary-sha256": hashlib.sha256(body).hexdigest()}
    for account, bucket, key in v["plant"]:
        (src if account == "source" else dst).s3.put_object(Bucket=bucket if bucket else
            (sc.source_bucket if account == "source" else d.bucket), Key=key, Body=body, Metadata=meta)
print(json.dumps(out))
"#;

fn provision_all(lab: &Lab, variants: &[Variant]) -> World {
    let spec: Vec<Value> = variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = &CONTEXTS[v.context];
            let discover = c.mode == Mode::Discover;
            let drop: Vec<String> = v
                .action
                .iter()
                .filter(|a| a.side != "base")
                .map(Action::id)
                .collect();
            // Discovery variants take the action from their account-wide roles instead.
            let (drop, discover_drop) = if discover {
                (Vec::new(), drop)
            } else {
                (drop, Vec::new())
            };
            let plant: Vec<Value> = if c.plant {
                ["source", "destination"]
                    .iter()
                    .map(|side| json!([side, "", planted_key(&v.name, side)]))
                    .collect()
            } else {
                Vec::new()
            };
            // The start-up sweep deletes only versions at least this old: the planted ones.
            let mut settings = json!({});
            if c.plant {
                settings["sweep_min_age"] = json!("0s");
            }
            if c.tagged {
                settings["canary_tags"] = json!({"replicanary-iam": "tagged"});
            }
            json!({
                "name": v.name, "scenario": c.scenario, "suffix": format!("-i{i:02}"),
                "drop_actions": drop, "group": v.group(),
                "discover": discover, "discover_drop": discover_drop,
                "lock_days": if c.lock_source { json!(1) } else { Value::Null },
                "settings": settings, "plant": plant,
            })
        })
        .collect();
    let dir = lab.dir.path();
    let spec_path = dir.join("iam-variants.json");
    let spec = json!({"variants": spec, "external_id": EXTERNAL_ID, "dir": dir});
    std::fs::write(&spec_path, spec.to_string()).expect("write the spec");
    let script = dir.join("iam-provision.py");
    std::fs::write(&script, PROVISION).expect("write the script");
    let out = lab.python(&format!(
        "import runpy, sys; sys.argv = ['x', {:?}]; runpy.run_path({:?}, run_name='__main__')",
        spec_path.display().to_string(),
        script.display().to_string()
    ));
    let doc: Value = serde_json::from_str(out.trim()).expect("provisioning printed JSON");
    let configs = doc["configs"]
        .as_object()
        .expect("configs")
        .iter()
        .map(|(k, v)| (k.clone(), PathBuf::from(v.as_str().expect("path"))))
        .collect();
    let env = doc["env"]
        .as_object()
        .expect("env")
        .iter()
        .map(|(k, v)| {
            let vars = v
                .as_object()
                .expect("credentials")
                .iter()
                .map(|(n, x)| (n.clone(), x.as_str().expect("a credential").to_owned()))
                .collect();
            (k.clone(), vars)
        })
        .collect();
    let buckets = doc["buckets"]
        .as_object()
        .expect("buckets")
        .iter()
        .map(|(k, v)| {
            let s = |i: usize| v[i].as_str().expect("a bucket").to_owned();
            (k.clone(), (s(0), s(1), s(2)))
        })
        .collect();
    World {
        configs,
        env,
        buckets,
    }
}

/// `replicanary <command> --config <config> --format json` as the given base credentials.
fn spawn(command: &str, config: &Path, env: &[(String, String)]) -> Child {
    let mut cmd = support::binary();
    cmd.arg(command)
        .arg("--config")
        .arg(config)
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("replicanary starts")
}

fn json_of(child: Child, what: &str) -> Value {
    let out = child.wait_with_output().expect("replicanary runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// What replicanary showed for one variant: (fact, value) in a fixed order.
type Observed = Vec<(&'static str, String)>;

fn codes(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One verdict of `check --format json`, in words.
fn describe_verdict(v: &Value) -> String {
    let mut s = format!("`{}`", v["outcome"].as_str().unwrap_or("?"));
    if let Some(e) = v["aws_error"].as_object() {
        let part = |k: &str| match &e[k] {
            Value::String(x) => Some(x.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let words: Vec<String> = ["operation", "http_status", "code"]
            .iter()
            .filter_map(|k| part(k))
            .collect();
        s += &format!(" ({})", words.join(" "));
    }
    let findings = finding_ids(&v["findings"]);
    if !findings.is_empty() {
        s += &format!(", finding {}", codes(&findings));
    }
    match v["replica"]["listed"].as_bool() {
        Some(true) => s += ", the replica listed",
        Some(false) => s += ", no such version listed",
        None => {}
    }
    if v["replica"]["retain_until"].is_string() {
        s += ", retain-until date shown";
    }
    s
}

fn finding_ids(findings: &Value) -> Vec<String> {
    let mut ids: Vec<String> = findings
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|f| f["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn observe_once(name: &str, check: &Value, audit: Option<&Value>) -> Observed {
    let v = check["verdicts"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["replication"] == name))
        .unwrap_or_else(|| panic!("no verdict for {name}: {check}"));
    let mut seen = vec![("`check`", describe_verdict(v))];
    if let Some(audit) = audit {
        let entry = audit["destinations"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["replication"] == name))
            .unwrap_or_else(|| panic!("no audit entry for {name}: {audit}"));
        let ids = finding_ids(&entry["findings"]);
        let shown = if ids.is_empty() {
            "no finding".to_owned()
        } else {
            format!("finding {}", codes(&ids))
        };
        seen.push(("`audit`", shown));
    }
    seen
}

/// What `discover --format json` said about one source bucket: the replication it found
/// (and where the expected key came from), or why it skipped the bucket (or the account).
fn observe_discover(bucket: &str, doc: &Value) -> Observed {
    let found: Vec<String> = doc["discovered"]
        .as_array()
        .expect("discovered")
        .iter()
        .filter(|d| d["bucket"] == bucket)
        .map(
            |d| match d["destination"]["expected_kms_key_from"].as_str() {
                Some(from) => format!("found, expected key from `{from}`"),
                None => format!(
                    "found, expected key unknown ({})",
                    operation_in(d["destination"]["expected_kms_key_unknown"].as_str())
                ),
            },
        )
        .collect();
    let skipped: Vec<String> = doc["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter(|s| s["bucket"] == bucket || s["bucket"] == "")
        .map(|s| {
            format!(
                "skipped `{}` ({})",
                s["reason"].as_str().unwrap_or("?"),
                operation_in(s["detail"].as_str())
            )
        })
        .collect();
    let shown = [found, skipped].concat();
    let mut shown = if shown.is_empty() {
        "not seen".to_owned()
    } else {
        shown.join(", ")
    };
    shown.push_str(&observe_coverage(doc));
    vec![("`discover`", shown)]
}

/// Coverage, as `discover` saw it: whether it listed the rules of the other copies' source
/// buckets (none of them opted in with this copy's tag), and why not where it could not
/// read them.
fn observe_coverage(doc: &Value) -> String {
    let listed = doc["unmonitored"].as_array().is_some_and(|l| !l.is_empty());
    let refused: BTreeSet<String> = doc["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter(|s| s["detail"].as_str().unwrap_or("").contains("coverage"))
        .map(|s| {
            format!(
                "`{}` ({})",
                s["reason"].as_str().unwrap_or("?"),
                operation_in(s["detail"].as_str())
            )
        })
        .collect();
    let mut out = if listed {
        "; unmonitored rules listed".to_owned()
    } else {
        "; no unmonitored rule listed".to_owned()
    };
    if !refused.is_empty() {
        out.push_str(&format!(
            " (coverage skipped {})",
            refused.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

/// The first S3 operation a discovery detail names (the rest of it carries ARNs and
/// bucket names that differ between runs).
fn operation_in(detail: Option<&str>) -> String {
    let detail = detail.unwrap_or_default();
    [
        "ListBuckets",
        "GetBucketTagging",
        "GetBucketReplication",
        "HeadBucket",
        "GetBucketEncryption",
    ]
    .into_iter()
    .filter_map(|op| detail.find(op).map(|at| (at, op)))
    .min()
    .map_or_else(|| "?".to_owned(), |(_, op)| op.to_owned())
}

fn sides(present: impl Fn(&str) -> bool) -> String {
    let s: Vec<&str> = ["source", "destination"]
        .into_iter()
        .filter(|side| present(side))
        .collect();
    if s.is_empty() {
        "none".to_owned()
    } else {
        s.join(" and ")
    }
}

fn observe_run(
    name: &str,
    destination: &str,
    m: &Metrics,
    left: &BTreeMap<(String, &str), usize>,
    planted: bool,
) -> Observed {
    fn rs<'a>(name: &'a str, side: &'a str) -> [(&'static str, &'a str); 2] {
        [("replication", name), ("side", side)]
    }
    let standing: Vec<String> = m
        .label_values("replicanary_verdict", "outcome")
        .into_iter()
        .filter(|o| {
            m.get(
                "replicanary_verdict",
                &[
                    ("replication", name),
                    ("destination", destination),
                    ("outcome", o),
                ],
            ) == Some(1.0)
        })
        .collect();
    let mut seen = vec![
        ("standing verdict", codes(&standing)),
        (
            "cleanup failures",
            sides(|s| m.sum("replicanary_cleanup_failures_total", &rs(name, s)) > 0.0),
        ),
        (
            "retained by Object Lock",
            sides(|s| m.sum("replicanary_canaries_retained", &rs(name, s)) > 0.0),
        ),
    ];
    if planted {
        seen.push((
            "planted leftovers the start-up sweep left",
            sides(|s| left.get(&(name.to_owned(), s)).copied().unwrap_or(0) > 0),
        ));
    }
    seen
}

/// Runs every variant and returns what each showed.
fn observe(lab: &Lab, variants: &[Variant], world: &World) -> BTreeMap<String, Observed> {
    let env = |k: &str| world.env[k].clone();
    let once = spawn("check", &world.configs["once"], &env("base"));
    let audit = spawn("audit", &world.configs["once"], &env("base"));
    let nobase = spawn("check", &world.configs["nobase"], &env("nobase"));
    let discovering: Vec<(String, Child)> = variants
        .iter()
        .filter(|v| CONTEXTS[v.context].mode == Mode::Discover)
        .map(|v| {
            let config = &world.configs[&v.group()];
            (v.name.clone(), spawn("discover", config, &env("base")))
        })
        .collect();
    // The daemon, meanwhile: until every replication has a verdict.
    let run_env: Vec<(&str, &str)> = world.env["base"]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let daemon = Daemon::start(&world.configs["run"], &run_env);
    let pairs: Vec<(&str, &str)> = variants
        .iter()
        .filter(|v| CONTEXTS[v.context].mode == Mode::Run)
        .map(|v| (v.name.as_str(), world.buckets[&v.name].2.as_str()))
        .collect();
    let metrics = daemon.wait_for_verdicts(&pairs, 1.0, Duration::from_secs(60));
    drop(daemon);
    // Which planted leftovers the start-up sweeps left.
    let (src, dst) = (
        RootS3::new(lab, "111111111111"),
        RootS3::new(lab, "222222222222"),
    );
    let mut left = BTreeMap::new();
    for v in variants.iter().filter(|v| CONTEXTS[v.context].plant) {
        let (sb, db, _) = &world.buckets[&v.name];
        let s = src.versions(sb, &planted_key(&v.name, "source")).len();
        let d = dst.versions(db, &planted_key(&v.name, "destination")).len();
        left.insert((v.name.clone(), "source"), s);
        left.insert((v.name.clone(), "destination"), d);
    }
    let (once, audit, nobase) = (
        json_of(once, "check"),
        json_of(audit, "audit"),
        json_of(nobase, "check (base role without sts:AssumeRole)"),
    );
    let discovered: BTreeMap<String, Value> = discovering
        .into_iter()
        .map(|(name, child)| {
            let doc = json_of(child, &format!("discover ({name})"));
            (name, doc)
        })
        .collect();
    variants
        .iter()
        .map(|v| {
            let seen = match v.group().as_str() {
                "once" => observe_once(&v.name, &once, Some(&audit)),
                "nobase" => observe_once(&v.name, &nobase, None),
                g if g.starts_with("discover-") => {
                    observe_discover(&world.buckets[&v.name].0, &discovered[&v.name])
                }
                _ => observe_run(
                    &v.name,
                    &world.buckets[&v.name].2,
                    &metrics,
                    &left,
                    CONTEXTS[v.context].plant,
                ),
            };
            (v.name.clone(), seen)
        })
        .collect()
}

/// The facts of `seen` that differ from the context's baseline, in words.
fn differences(seen: &Observed, baseline: &Observed) -> Vec<String> {
    seen.iter()
        .filter_map(|(fact, value)| {
            let base = baseline.iter().find(|(f, _)| f == fact).map(|(_, v)| v)?;
            (value != base).then(|| {
                if base == "`ok`" {
                    format!("{fact}: {value}")
                } else {
                    format!("{fact}: {value} (with it: {base})")
                }
            })
        })
        .collect()
}

/// The table: one row per action, what replicanary showed without it.
fn table(actions: &[Action], variants: &[Variant], seen: &BTreeMap<String, Observed>) -> String {
    let mut out = String::from(
        "| role | action | statement | without it, in the lab |\n| --- | --- | --- | --- |\n",
    );
    let mut problems = Vec::new();
    for a in actions {
        let mut effects = Vec::new();
        for v in variants.iter().filter(|v| v.action.as_ref() == Some(a)) {
            let c = &CONTEXTS[v.context];
            let baseline = &seen[&format!("{}--all", c.label)];
            let diff = differences(&seen[&v.name], baseline);
            if !diff.is_empty() {
                let how = match c.mode {
                    Mode::Once | Mode::Discover => "",
                    Mode::Run => ", `run`",
                };
                effects.push(format!("*{}*{how} — {}", c.shown, diff.join("; ")));
            }
        }
        let note = NOTES
            .iter()
            .find(|(side, action, _)| *side == a.side && *action == a.action)
            .map(|(_, _, note)| *note);
        let cell = match (effects.is_empty(), note) {
            (false, None) => effects.join("<br>"),
            (true, Some(note)) => format!("no change in the lab: {note}"),
            (true, None) => {
                problems.push(format!(
                    "{}: removing it changes nothing in the lab; remove it from deploy/iam/ or say in NOTES why it stays",
                    a.id()
                ));
                "no change in the lab".to_owned()
            }
            (false, Some(_)) => {
                problems.push(format!(
                    "{}: NOTES says it changes nothing, but it does: {}",
                    a.id(),
                    effects.join("; ")
                ));
                effects.join("<br>")
            }
        };
        out += &format!("| {} | `{}` | `{}` | {cell} |\n", a.side, a.action, a.sid);
    }
    assert!(problems.is_empty(), "{}\n\n{out}", problems.join("\n"));
    out
}

/// The baselines behave as their scenarios say, or no difference would mean anything.
fn assert_baselines(seen: &BTreeMap<String, Observed>) {
    let fact = |name: &str, f: &str| -> String {
        seen[name]
            .iter()
            .find(|(k, _)| *k == f)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(fact("healthy--all", "`check`"), "`ok`", "{seen:?}");
    assert_eq!(fact("healthy--all", "`audit`"), "no finding", "{seen:?}");
    assert!(fact("vanished--all", "`check`").starts_with("`replica_missing` (HeadObject 404"));
    assert!(fact("vanished-no-list--all", "`check`").starts_with("`replica_missing`"));
    assert!(fact("locked--all", "`check`").contains("retain-until date shown"));
    assert_eq!(fact("tagged--all", "`check`"), "`ok`", "{seen:?}");
    assert!(fact("source-owned--all", "`audit`").contains("replica_owned_by_source_account"));
    assert!(fact("readers--all", "`check`").contains("reader_kms_not_granted"));
    assert_eq!(
        fact("discovery--all", "`discover`"),
        "found, expected key from `default_encryption`; unmonitored rules listed",
        "the other copies' source buckets are not opted in with this copy's tag: coverage lists their rules"
    );
    for name in [
        "run-leftovers--all",
        "run-locked--all",
        "run-source-locked--all",
    ] {
        assert_eq!(fact(name, "standing verdict"), "`ok`", "{name}: {seen:?}");
        assert_eq!(fact(name, "cleanup failures"), "none", "{name}: {seen:?}");
    }
    assert_eq!(
        fact(
            "run-leftovers--all",
            "planted leftovers the start-up sweep left"
        ),
        "none"
    );
    assert_eq!(
        fact("run-locked--all", "retained by Object Lock"),
        "destination"
    );
    assert!(fact("run-source-locked--all", "retained by Object Lock").contains("source"));
}

const BEGIN: &str =
    "<!-- BEGIN iam-necessity-table: written by tests/e2e_deploy_iam.rs (UPDATE_IAM_TABLE=1) -->\n";
const END: &str = "<!-- END iam-necessity-table -->";

/// The README's table equals `measured`, or (UPDATE_IAM_TABLE=1) is rewritten to it.
fn compare_with_readme(measured: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/README.md");
    let text = std::fs::read_to_string(&path).expect("deploy/README.md");
    let (head, rest) = text
        .split_once(BEGIN)
        .unwrap_or_else(|| panic!("deploy/README.md has no line {BEGIN:?}"));
    let (current, tail) = rest
        .split_once(END)
        .unwrap_or_else(|| panic!("deploy/README.md has no line {END:?}"));
    if current == measured {
        return;
    }
    if std::env::var("UPDATE_IAM_TABLE").is_ok_and(|v| v == "1") {
        std::fs::write(&path, format!("{head}{BEGIN}{measured}{END}{tail}")).expect("write");
        println!("deploy/README.md: the necessity table rewritten");
        return;
    }
    let old: Vec<&str> = current.lines().collect();
    let new: Vec<&str> = measured.lines().collect();
    let mut diff = String::new();
    for l in &old {
        if !new.contains(l) {
            diff += &format!("- {l}\n");
        }
    }
    for l in &new {
        if !old.contains(l) {
            diff += &format!("+ {l}\n");
        }
    }
    panic!(
        "deploy/README.md's IAM necessity table differs from what the lab shows \
         (- README, + measured); rerun with UPDATE_IAM_TABLE=1 to rewrite it:\n{diff}"
    );
}

#[test]
fn every_action_of_deploy_iam_is_needed_the_necessity_table() {
    let started = Instant::now();
    let lab = Lab::start(&[]);
    let actions = policy_actions();
    let variants = variants(&actions);
    let world = provision_all(&lab, &variants);
    let provisioned = started.elapsed();
    let seen = observe(&lab, &variants, &world);
    assert_baselines(&seen);
    let measured = table(&actions, &variants, &seen);
    println!(
        "{} variants ({} actions): provisioned after {:.1}s, done after {:.1}s\n{measured}",
        variants.len(),
        actions.len(),
        provisioned.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    compare_with_readme(&measured);
}
