//! What `replicanary discover` prints: the replications a pass found as configuration a
//! person could paste (`replications:` entries in the file's own format, YAML or JSON),
//! every skipped bucket or rule with its reason, and the enabled rules nobody monitors
//! (`discovery.coverage`; comments in YAML, `unmonitored` in JSON).
//!
//! A pasted entry probes the rule as discovery does — same buckets, regions, roles,
//! expected key, canary placement (`rule_prefix`, `canary_tags`, `source_fans_out`) — and,
//! being explicit, wins over the discovered one. Its `name` is the discovered name
//! (`<bucket>/<rule id>`) with every character a configured name may not hold (anything
//! but letters, digits, `.`, `_`, `-`) replaced by `-`; the discovered name is in the
//! comment above it.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::{Value, json};

use super::{Found, KeyFrom, Pass, Skip, coverage, same_rule_as};
use crate::config::{Discovery, Replication};
use crate::model::UnmonitoredRule;

/// A name a configuration accepts for a discovered replication, unique among `taken`.
pub fn config_name(discovered: &str, taken: &mut BTreeSet<String>) -> String {
    let base: String = discovered
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(120)
        .collect();
    let mut name = base.clone();
    let mut n = 1;
    while !taken.insert(name.clone()) {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

/// The explicit replication that wins over `f`, if any.
fn covered_by<'a>(f: &Found, explicit: &'a [Replication]) -> Option<&'a Replication> {
    explicit
        .iter()
        .find(|e| same_rule_as(e, &f.bucket, &[f.destination.bucket.as_str()]))
}

/// A configuration value in the order it is written.
enum Node {
    Scalar(String),
    Bool(bool),
    /// Written on one line (`canary_tags`).
    Flow(Vec<(String, String)>),
    Map(Vec<(&'static str, Node)>),
    List(Vec<Node>),
}

impl Node {
    fn str(s: &str) -> Node {
        Node::Scalar(s.to_owned())
    }

    fn json(&self) -> Value {
        match self {
            Node::Scalar(s) => json!(s),
            Node::Bool(b) => json!(b),
            Node::Flow(pairs) => {
                Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
            }
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.json()))
                    .collect(),
            ),
            Node::List(items) => Value::Array(items.iter().map(Node::json).collect()),
        }
    }

    /// Block YAML lines, `indent` spaces in.
    fn yaml(&self, indent: usize, out: &mut Vec<String>) {
        let pad = " ".repeat(indent);
        let Node::Map(entries) = self else {
            out.push(format!("{pad}{}", self.inline()));
            return;
        };
        for (k, v) in entries {
            match v {
                Node::Map(_) => {
                    out.push(format!("{pad}{k}:"));
                    v.yaml(indent + 2, out);
                }
                Node::List(items) => {
                    out.push(format!("{pad}{k}:"));
                    for item in items {
                        let mut inner = Vec::new();
                        item.yaml(0, &mut inner);
                        for (i, l) in inner.iter().enumerate() {
                            let lead = if i == 0 { "- " } else { "  " };
                            out.push(format!("{pad}  {lead}{l}"));
                        }
                    }
                }
                _ => out.push(format!("{pad}{k}: {}", v.inline())),
            }
        }
    }

    fn inline(&self) -> String {
        match self {
            Node::Scalar(s) => scalar(s),
            Node::Bool(b) => b.to_string(),
            Node::Flow(pairs) => {
                let items: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}: {}", scalar(k), scalar(v)))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            Node::Map(_) | Node::List(_) => String::new(),
        }
    }
}

/// One found replication as a configuration entry.
fn entry(f: &Found, name: &str, d: &Discovery) -> Node {
    let side = |bucket: &str, region: &str, arn: &str| {
        let mut m = vec![
            ("bucket", Node::str(bucket)),
            ("region", Node::str(region)),
            ("role_arn", Node::str(arn)),
        ];
        if let Some(x) = &d.external_id {
            m.push(("external_id", Node::str(x)));
        }
        m
    };
    let dest = &f.destination;
    let mut destination = side(&dest.bucket, &dest.region, &dest.role.arn);
    if let Some(k) = &dest.expected_kms_key {
        destination.push(("expected_kms_key_arn", Node::Scalar(k.to_string())));
    }
    if !dest.readers.is_empty() {
        let readers = dest.readers.iter().map(|r| {
            let mut m = vec![
                ("name", Node::str(&r.name)),
                ("role_arn", Node::str(&r.role.arn)),
            ];
            if let Some(x) = &r.role.external_id {
                m.push(("external_id", Node::str(x)));
            }
            Node::Map(m)
        });
        destination.push(("readers", Node::List(readers.collect())));
    }
    let mut e = vec![("name", Node::str(name))];
    if !f.placement.prefix.is_empty() {
        e.push(("rule_prefix", Node::str(&f.placement.prefix)));
    }
    if !f.placement.tags.is_empty() {
        e.push(("canary_tags", Node::Flow(f.placement.tags.clone())));
    }
    if f.source_fans_out {
        e.push(("source_fans_out", Node::Bool(true)));
    }
    e.push((
        "source",
        Node::Map(side(&f.bucket, &f.region, &f.source_role.arn)),
    ));
    e.push(("destinations", Node::List(vec![Node::Map(destination)])));
    Node::Map(e)
}

/// The JSON document: `replications` (paste-ready), `discovered` (everything discovery
/// knows of each), `skipped`, `unmonitored` (the rules nobody monitors; `null` without
/// `discovery.coverage`), and a `summary`.
pub fn json(pass: &Pass, explicit: &[Replication], d: &Discovery, canary_prefix: &str) -> String {
    let mut taken: BTreeSet<String> = explicit.iter().map(|r| r.name.clone()).collect();
    let mut replications = Vec::new();
    let mut discovered = Vec::new();
    for f in pass.found() {
        let covered = covered_by(f, explicit).map(|e| e.name.clone());
        let name = config_name(&f.name, &mut taken);
        if covered.is_none() {
            replications.push(entry(f, &name, d).json());
        }
        discovered.push(details(f, &name, covered, canary_prefix));
    }
    let skipped: Vec<Value> = pass.skips().map(skip_json).collect();
    let unmonitored = coverage::uncovered(pass, explicit);
    let mut summary = summary_json(pass);
    summary["unmonitored_rules"] = if pass.coverage {
        json!(unmonitored.len())
    } else {
        Value::Null
    };
    let doc = json!({
        "replications": replications,
        "discovered": discovered,
        "skipped": skipped,
        "unmonitored": pass.coverage.then(|| unmonitored.iter().map(unmonitored_json).collect::<Vec<_>>()),
        "summary": summary,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn details(f: &Found, name: &str, covered: Option<String>, canary_prefix: &str) -> Value {
    let dest = &f.destination;
    let (key_from, unknown) = match &dest.key_from {
        KeyFrom::Override => (Some("override"), None),
        KeyFrom::DefaultEncryption => (Some("default_encryption"), None),
        KeyFrom::Unknown(why) => (None, Some(why.as_str())),
    };
    let tags: serde_json::Map<String, Value> = f
        .placement
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "name": f.name,
        "config_name": name,
        "covered_by": covered,
        "source_account": f.source_account,
        "region": f.region,
        "bucket": f.bucket,
        "rule_id": f.rule_id,
        "priority": f.priority,
        "prefix": f.placement.prefix,
        "tags": tags,
        "canary_key_prefix": format!("{}{canary_prefix}{}/", f.placement.prefix, f.name),
        "source_fans_out": f.source_fans_out,
        "source_role_arn": f.source_role.arn,
        "destination": {
            "bucket": dest.bucket,
            "account": dest.account,
            "account_from": dest.account_from.as_str(),
            "region": dest.region,
            "role_arn": dest.role.arn,
            "expected_kms_key_arn": dest.expected_kms_key.as_ref().map(ToString::to_string),
            "expected_kms_key_from": key_from,
            "expected_kms_key_unknown": unknown,
            "readers": dest.readers.iter().map(|r| json!({"name": r.name, "role_arn": r.role.arn})).collect::<Vec<_>>(),
        },
    })
}

fn skip_json(s: &Skip) -> Value {
    json!({
        "source_account": s.source_account,
        "region": s.region,
        "bucket": s.bucket,
        "rule_id": s.rule_id,
        "reason": s.reason.as_str(),
        "error": s.reason.is_error(),
        "detail": s.detail,
    })
}

fn unmonitored_json(r: &UnmonitoredRule) -> Value {
    json!({
        "source_account": r.source_account,
        "region": r.region,
        "bucket": r.bucket,
        "rule_id": r.rule_id,
        "destination_bucket": r.destination_bucket,
        "destination_account": r.destination_account,
        "replica_kms_key_id": r.replica_kms_key_id,
        "reason": r.reason,
    })
}

fn summary_json(pass: &Pass) -> Value {
    json!({
        "replications": pass.found().count(),
        "skipped": pass.skips().count(),
        "errors": pass.skips().filter(|s| s.reason.is_error()).count(),
        "buckets_listed": pass.scopes.iter().filter_map(|s| s.listed).sum::<usize>(),
        "seconds": (pass.took.as_secs_f64() * 1000.0).round() / 1000.0,
    })
}

/// The YAML document: a `replications:` list with a comment above each entry, the
/// replications explicit ones cover, and every skip, as comments.
pub fn yaml(pass: &Pass, explicit: &[Replication], d: &Discovery, canary_prefix: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", summary_line(pass, d));
    out.push_str(
        "# Each replication is one enabled rule of an opted-in bucket, as `run` probes it. Pasted\n\
         # under `replications:` of a configuration it is probed explicitly: an explicit replication\n\
         # with the same source bucket and destination bucket wins over the discovered one.\n",
    );
    let mut taken: BTreeSet<String> = explicit.iter().map(|r| r.name.clone()).collect();
    let mut covered = Vec::new();
    let mut entries = String::new();
    for f in pass.found() {
        let name = config_name(&f.name, &mut taken);
        if let Some(e) = covered_by(f, explicit) {
            covered.push(format!("{} — by `{}`", f.name, e.name));
            continue;
        }
        yaml_entry(&mut entries, f, &name, d, canary_prefix);
    }
    if entries.is_empty() {
        out.push_str("replications: []\n");
    } else {
        out.push_str("replications:\n");
        out.push_str(&entries);
    }
    if !covered.is_empty() {
        let _ = writeln!(out, "# covered by explicit replications (probed as those):");
        for c in covered {
            let _ = writeln!(out, "#   {c}");
        }
    }
    yaml_skips(&mut out, pass);
    yaml_unmonitored(&mut out, pass, explicit);
    out
}

/// The rules nobody monitors, as comments: one line each.
fn yaml_unmonitored(out: &mut String, pass: &Pass, explicit: &[Replication]) {
    if !pass.coverage {
        let _ = writeln!(
            out,
            "# unmonitored replication rules: not read (discovery.coverage: false)"
        );
        return;
    }
    let rules = coverage::uncovered(pass, explicit);
    let _ = writeln!(
        out,
        "# unmonitored replication rules ({}): enabled rules no replication probes",
        rules.len()
    );
    for r in rules {
        let account = r
            .destination_account
            .as_deref()
            .map_or_else(String::new, |a| format!(" (account {a})"));
        let _ = writeln!(
            out,
            "#   {} in {} {}: {} → {}{account}, ReplicaKmsKeyID {}",
            scalar(&format!(
                "{}/{}",
                r.bucket,
                r.rule_id.as_deref().unwrap_or("(no ID)")
            )),
            r.source_account,
            r.region,
            r.reason,
            r.destination_bucket,
            r.replica_kms_key_id
                .as_deref()
                .map_or("(none)".to_owned(), scalar),
        );
    }
}

fn summary_line(pass: &Pass, d: &Discovery) -> String {
    let errors = pass.skips().filter(|s| s.reason.is_error()).count();
    format!(
        "replicanary discover: {} replications found, {} buckets or rules skipped ({errors} could not be read), {} buckets listed in {} account(s) × {} region(s) in {:.2}s",
        pass.found().count(),
        pass.skips().count(),
        pass.scopes.iter().filter_map(|s| s.listed).sum::<usize>(),
        d.source_accounts.len(),
        d.regions.len(),
        pass.took.as_secs_f64()
    )
}

fn yaml_entry(out: &mut String, f: &Found, name: &str, d: &Discovery, canary_prefix: &str) {
    let _ = writeln!(
        out,
        "  # {} — rule {} (priority {}) of {} in {}, {}; canaries under {}",
        f.name,
        scalar(&f.rule_id),
        f.priority,
        f.bucket,
        f.source_account,
        f.region,
        scalar(&format!("{}{canary_prefix}{}/", f.placement.prefix, f.name)),
    );
    let mut lines = Vec::new();
    entry(f, name, d).yaml(0, &mut lines);
    for (i, line) in lines.iter().enumerate() {
        let lead = if i == 0 { "  - " } else { "    " };
        let _ = writeln!(out, "{lead}{line}{}", key_note(line, f));
    }
    if f.destination.expected_kms_key.is_none()
        && let KeyFrom::Unknown(why) = &f.destination.key_from
    {
        let _ = writeln!(
            out,
            "        # expected_kms_key_arn: unknown — {why}; wrong_kms_key is not judged (name the key to judge it; a configured replication needs it)"
        );
    }
}

/// The comment after a line: where the expected key came from.
fn key_note(line: &str, f: &Found) -> &'static str {
    if !line.trim_start().starts_with("expected_kms_key_arn:") {
        return "";
    }
    match f.destination.key_from {
        KeyFrom::Override => "   # discovery.expected_kms_keys",
        KeyFrom::DefaultEncryption => "   # the destination bucket's default SSE-KMS key",
        KeyFrom::Unknown(_) => "",
    }
}

fn yaml_skips(out: &mut String, pass: &Pass) {
    let skips: Vec<&Skip> = pass.skips().collect();
    if skips.is_empty() {
        return;
    }
    let _ = writeln!(out, "# skipped ({}):", skips.len());
    for s in skips {
        let what = match (&s.bucket, &s.rule_id) {
            (b, _) if b.is_empty() => format!("{}/{}", s.source_account, s.region),
            (b, Some(r)) => format!("{b}/{r}"),
            (b, None) => b.clone(),
        };
        let error = if s.reason.is_error() { " (error)" } else { "" };
        let _ = writeln!(
            out,
            "#   {what} in {} {}: {}{error} — {}",
            s.source_account,
            s.region,
            s.reason,
            s.detail.replace('\n', " ")
        );
    }
}

/// A string as a YAML scalar: plain when that cannot be misread, else double-quoted (a
/// JSON string is a valid YAML double-quoted scalar).
pub fn scalar(s: &str) -> String {
    let plain_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._/:@-".contains(c));
    let starts_well = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
    );
    if plain_chars && starts_well && !reserved && !s.ends_with(':') {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}
