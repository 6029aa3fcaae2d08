//! The reports of `check` (one block per verdict) and `audit` (one block per destination
//! with its findings), for people or as JSON.

use std::fmt::Write;

use crate::model::{DestinationVerdict, Finding, Outcome};

mod readers;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// What a one-shot command reports.
pub trait Report: Sized {
    fn render(items: &[Self], format: ReportFormat) -> String;
    /// Whether the command exits 0.
    fn clean(items: &[Self]) -> bool;
}

impl Report for DestinationVerdict {
    fn render(items: &[Self], format: ReportFormat) -> String {
        render(items, format)
    }
    fn clean(items: &[Self]) -> bool {
        !items.is_empty() && all_ok(items)
    }
}

impl Report for AuditEntry {
    fn render(items: &[Self], format: ReportFormat) -> String {
        render_audit(items, format)
    }
    fn clean(items: &[Self]) -> bool {
        items.iter().all(|e| e.findings.is_empty())
    }
}

fn render(verdicts: &[DestinationVerdict], format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => {
            let doc = serde_json::json!({
                "ok": all_ok(verdicts),
                "verdicts": verdicts,
                "failing_readers": readers::failing(verdicts),
            });
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
        }
        ReportFormat::Text => text(verdicts),
    }
}

fn text(verdicts: &[DestinationVerdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let latency = v.latency.map_or(String::new(), |l| {
            format!(" (replicated in {:.2}s)", l.as_secs_f64())
        });
        let shown = if v.outcome == Outcome::Ok {
            "ok".to_owned()
        } else {
            v.outcome.as_str().to_uppercase()
        };
        let _ = writeln!(
            out,
            "{} → {}: {shown}{latency}",
            v.replication, v.destination
        );
        if let Some(r) = &v.reason {
            let _ = writeln!(out, "    why:          {r}");
        }
        if v.expected_kms_key.is_empty() {
            let _ = writeln!(
                out,
                "    expected key: none named (the replica's key is not judged)"
            );
        } else {
            let _ = writeln!(out, "    expected key: {}", v.expected_kms_key);
        }
        match (&v.replica.kms_key, &v.replica.server_side_encryption) {
            (Some(k), _) => {
                let _ = writeln!(out, "    replica key:  {k}");
            }
            (None, Some(sse)) => {
                let _ = writeln!(out, "    replica key:  none (encryption {sse})");
            }
            (None, None) => {}
        }
        if v.replica.read_skipped {
            let class = v
                .replica
                .storage_class
                .as_deref()
                .unwrap_or("an archive class");
            let _ = writeln!(
                out,
                "    read:         skipped — the replica is in {class} and cannot be read without a restore; judged by its HeadObject"
            );
        }
        if let Some(until) = v.replica.retain_until {
            let _ = writeln!(
                out,
                "    retained:     until {} (Object Lock; the replica is deleted after that date)",
                humantime::format_rfc3339_seconds(until)
            );
        }
        if let Some(e) = &v.aws_error {
            let _ = writeln!(out, "    aws error:    {e}");
            if let Some(id) = &e.request_id {
                let _ = writeln!(out, "    request id:   {id}");
            }
        }
        if let (Some(k), Some(id)) = (&v.key, &v.version_id) {
            let _ = writeln!(out, "    canary:       {k} (version {id})");
        }
        findings(&mut out, v.findings.as_deref().unwrap_or_default());
        readers::text(&mut out, v);
    }
    let ok = verdicts.iter().filter(|v| v.outcome == Outcome::Ok).count();
    let _ = writeln!(out, "{ok} of {} destinations ok", verdicts.len());
    readers::summary(&mut out, verdicts);
    out
}

/// Every destination `ok` and every reader that read either `ok` or `skipped`.
fn all_ok(verdicts: &[DestinationVerdict]) -> bool {
    verdicts.iter().all(|v| v.outcome == Outcome::Ok) && readers::failing(verdicts).is_empty()
}

fn findings(out: &mut String, findings: &[Finding]) {
    for f in findings {
        let _ = writeln!(out, "    finding:      {} — {}", f.id, f.explanation);
        let _ = writeln!(out, "      fix:        {}", f.fix);
    }
}

/// What `audit` found for one destination.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub replication: String,
    pub destination: String,
    pub findings: Vec<Finding>,
}

fn render_audit(entries: &[AuditEntry], format: ReportFormat) -> String {
    let total: usize = entries.iter().map(|e| e.findings.len()).sum();
    if format == ReportFormat::Json {
        let doc = serde_json::json!({ "ok": total == 0, "destinations": entries });
        return serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    for e in entries {
        let n = e.findings.len();
        let summary = if n == 0 {
            "no findings".to_owned()
        } else {
            format!("{n} finding(s)")
        };
        let _ = writeln!(out, "{} → {}: {summary}", e.replication, e.destination);
        findings(&mut out, &e.findings);
    }
    let _ = writeln!(out, "{total} finding(s) in {} destinations", entries.len());
    out
}
