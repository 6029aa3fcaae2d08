//! (tests only) The findings table and the page's colours against the alert rules and the
//! runbook, read from `deploy/prometheus/*.rules.yml` and `docs/runbook.md`:
//! - a finding an alert keys on (its `expr`) is in the table with the alert's severity; one
//!   an alert only withholds itself for (`unless`) is in the table;
//! - a finding an alert's description names (a `finding=~` filter, or its label in the
//!   text) is in the table, with a severity no higher than the alert's;
//! - a verdict an alert keys on is coloured with the alert's severity on the page, and every
//!   verdict the page colours `critical` or `warning` has such an alert;
//! - every finding's runbook anchor, and every alert's `runbook_url` anchor, is a heading of
//!   docs/runbook.md; the rules link findings the way the table names their anchors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::page::severity as page_severity;
use crate::model::finding::{FINDINGS, Severity};
use crate::model::{FindingId, Outcome};

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

struct Alert {
    name: String,
    expr: String,
    severity: Severity,
    description: String,
    runbook_url: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn alerts() -> Vec<Alert> {
    let dir = repo().join("deploy/prometheus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/prometheus is readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no alert rules in {}", dir.display());
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("the rules are readable");
        let parsed: RuleFile =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for rule in parsed.groups.into_iter().flat_map(|g| g.rules) {
            let Some(name) = rule.alert else { continue };
            let label = rule.labels.get("severity").cloned().unwrap_or_default();
            let severity = [Severity::Info, Severity::Warning, Severity::Critical]
                .into_iter()
                .find(|s| s.as_str() == label)
                .unwrap_or_else(|| panic!("{name}: severity `{label}` is none of the three"));
            let annotation = |k: &str| rule.annotations.get(k).cloned().unwrap_or_default();
            out.push(Alert {
                name,
                expr: rule.expr,
                severity,
                description: annotation("description"),
                runbook_url: annotation("runbook_url"),
            });
        }
    }
    out
}

/// A Prometheus regular expression (fully anchored) as the rules write them: literals,
/// `.*`, `|` and groups. Anything else fails the test, so that it is extended, not skipped.
fn regex_matches(pattern: &str, s: &str) -> bool {
    #[derive(Clone)]
    enum Item {
        Char(char),
        Any,
    }
    fn alternatives(chars: &[char], pos: &mut usize) -> Vec<Vec<Item>> {
        let mut alts = vec![Vec::new()];
        let mut current: Vec<Vec<Item>> = vec![Vec::new()];
        while *pos < chars.len() {
            let c = chars[*pos];
            *pos += 1;
            match c {
                '|' => {
                    alts.pop();
                    alts.extend(std::mem::replace(&mut current, vec![Vec::new()]));
                    alts.push(Vec::new());
                }
                ')' => break,
                '(' => {
                    let inner = alternatives(chars, pos);
                    current = current
                        .iter()
                        .flat_map(|seq| {
                            inner
                                .iter()
                                .map(move |alt| [seq.clone(), alt.clone()].concat())
                        })
                        .collect();
                }
                '.' if chars.get(*pos) == Some(&'*') => {
                    *pos += 1;
                    current.iter_mut().for_each(|seq| seq.push(Item::Any));
                }
                c if c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-' => {
                    current.iter_mut().for_each(|seq| seq.push(Item::Char(c)));
                }
                other => panic!("`{other}` in the regex `{chars:?}`: extend this check"),
            }
        }
        alts.pop();
        alts.extend(current);
        alts
    }
    fn seq_matches(items: &[Item], s: &[char]) -> bool {
        match items.split_first() {
            None => s.is_empty(),
            Some((Item::Char(c), rest)) => s.first() == Some(c) && seq_matches(rest, &s[1..]),
            Some((Item::Any, rest)) => (0..=s.len()).any(|i| seq_matches(rest, &s[i..])),
        }
    }
    let chars: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    alternatives(&chars, &mut 0)
        .iter()
        .any(|seq| seq_matches(seq, &s))
}

/// The `label="v"` / `label=~"re"` matchers on `label` of `metric{…}` selectors in `text`,
/// as patterns (a literal value is its own pattern).
fn matchers(text: &str, metric: &str, label: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(&format!("{metric}{{")) {
        let body = &text[i + metric.len() + 1..];
        let body = &body[..body.find('}').unwrap_or(body.len())];
        for part in body.split(',') {
            let part = part.trim();
            let Some(rest) = part.strip_prefix(label) else {
                continue;
            };
            let value = |v: &str| v.trim_matches(|c| c == '"' || c == '\\').to_owned();
            if let Some(re) = rest.strip_prefix("=~") {
                out.push(value(re));
            } else if let Some(lit) = rest.strip_prefix('=') {
                out.push(value(lit));
            }
        }
    }
    out
}

/// The `finding=~` patterns of a description's queries: written in the `printf` format, or
/// given to it as a `%s` argument.
fn described_patterns(description: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in description.match_indices("printf \"") {
        let rest = &description[i + "printf ".len()..];
        let mut literals = Vec::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    let mut lit = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => lit.extend(chars.next()),
                            '"' => break,
                            c => lit.push(c),
                        }
                    }
                    literals.push(lit);
                }
                // The pipe to `query`: the arguments end.
                '|' => break,
                _ => {}
            }
        }
        let Some((format, args)) = literals.split_first() else {
            continue;
        };
        // `%s`/`%q` in order; the literal arguments fill the `%s` after the `%q`s
        // (those take `$labels`).
        let mut literal_args = args.iter();
        for pattern in matchers(format, "replicanary_finding", "finding") {
            if pattern == "%s" {
                out.extend(literal_args.next().cloned());
            } else {
                out.push(pattern);
            }
        }
    }
    out
}

fn ids_matching(pattern: &str) -> Vec<FindingId> {
    FindingId::all()
        .filter(|id| regex_matches(pattern, id.as_str()))
        .collect()
}

/// GitHub's anchor of a Markdown heading: lower case, punctuation but `-` and `_` dropped,
/// spaces as `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn runbook_anchors() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/runbook.md")).expect("the runbook");
    text.lines()
        .filter(|l| l.starts_with('#') && !l.starts_with("#!"))
        .map(|l| github_anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn the_regex_subset() {
    assert!(regex_matches("probe_role_.*", "probe_role_kms_denied"));
    assert!(!regex_matches("probe_role_.*", "reader_s3_denied"));
    let readers = "reader_(kms_not_granted|s3_denied)|cannot_inspect:GetKeyPolicy";
    assert!(regex_matches(readers, "reader_s3_denied"));
    assert!(regex_matches(readers, "cannot_inspect:GetKeyPolicy"));
    assert!(!regex_matches(readers, "reader_cannot_be_assumed"));
    assert!(!regex_matches("rule_disabled", "rule_disabled_too"));
}

#[test]
fn findings_the_rules_key_on_are_in_the_table_with_their_severity() {
    let alerts = alerts();
    let mut keyed = 0;
    for a in &alerts {
        let (positive, withheld) = a.expr.split_once("unless").unwrap_or((&a.expr, ""));
        for pattern in matchers(positive, "replicanary_finding", "finding") {
            let ids = ids_matching(&pattern);
            assert!(
                !ids.is_empty(),
                "{}: `{pattern}` names no finding of the table",
                a.name
            );
            for id in ids {
                keyed += 1;
                assert_eq!(
                    id.severity(),
                    a.severity,
                    "{}: {id} is keyed on by a {} alert",
                    a.name,
                    a.severity.as_str()
                );
            }
        }
        for pattern in matchers(withheld, "replicanary_finding", "finding") {
            assert!(
                !ids_matching(&pattern).is_empty(),
                "{}: `{pattern}`",
                a.name
            );
        }
    }
    assert!(keyed >= 3, "the probe_role_ findings are keyed on: {keyed}");
}

#[test]
fn findings_the_descriptions_name_are_in_the_table_and_no_worse_than_the_alert() {
    let mut named = 0;
    for a in &alerts() {
        for pattern in described_patterns(&a.description) {
            // Every alternative names a finding, not only the pattern as a whole.
            let ids = ids_matching(&pattern);
            assert!(!ids.is_empty(), "{}: `{pattern}` names no finding", a.name);
            for id in ids {
                named += 1;
                assert!(id.severity() <= a.severity, "{}: {id}", a.name);
            }
        }
        // A label in the prose (outside the templates).
        let prose: String = a
            .description
            .split("{{")
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    part.split_once("}}").map_or("", |p| p.1)
                }
            })
            .collect();
        for word in prose.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if let Some(id) = FindingId::all().find(|id| id.as_str() == word) {
                named += 1;
                assert!(id.severity() <= a.severity, "{}: {id}", a.name);
            }
        }
        // Findings link to the runbook as the table names the anchors.
        for (i, _) in a.description.match_indices("#finding-") {
            assert!(
                a.description[i..].starts_with(
                    "#finding-{{ $f.Labels.finding | toLower | reReplaceAll \":\" \"\" }}"
                ),
                "{}: a finding's link is not FindingId::runbook_anchor",
                a.name
            );
        }
    }
    assert!(
        named >= 5,
        "the readers' and Object Lock's findings are named: {named}"
    );
}

#[test]
fn the_page_colours_verdicts_as_the_alerts_rate_them() {
    let alerts = alerts();
    let mut alerted: BTreeMap<&str, Vec<Severity>> = BTreeMap::new();
    for a in &alerts {
        let positive = a.expr.split_once("unless").map_or(a.expr.as_str(), |p| p.0);
        for pattern in matchers(positive, "replicanary_verdict", "outcome") {
            let outcomes: Vec<Outcome> = Outcome::ALL
                .iter()
                .copied()
                .filter(|o| regex_matches(&pattern, o.as_str()))
                .collect();
            assert!(
                !outcomes.is_empty(),
                "{}: `{pattern}` names no verdict",
                a.name
            );
            for o in outcomes {
                assert_eq!(page_severity(o), a.severity.as_str(), "{}: {o:?}", a.name);
                alerted.entry(o.as_str()).or_default().push(a.severity);
            }
        }
    }
    for o in Outcome::ALL {
        let colour = page_severity(o);
        if colour == "critical" || colour == "warning" {
            assert!(
                alerted.contains_key(o.as_str()),
                "{o:?} is {colour} with no alert"
            );
        } else {
            assert!(
                !alerted.contains_key(o.as_str()),
                "{o:?} is {colour} yet alerted on"
            );
        }
    }
}

#[test]
fn every_anchor_is_a_heading_of_the_runbook() {
    let anchors = runbook_anchors();
    for spec in FINDINGS {
        let anchor = spec.id.runbook_anchor();
        assert!(
            anchors.contains(&anchor),
            "docs/runbook.md has no #{anchor}"
        );
    }
    for a in alerts() {
        let anchor = a
            .runbook_url
            .split_once("docs/runbook.md#")
            .map(|p| p.1.to_owned())
            .unwrap_or_default();
        assert!(
            anchors.contains(&anchor),
            "{}: runbook_url #{anchor}",
            a.name
        );
    }
}
