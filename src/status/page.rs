//! The status page (`GET /`): the board as one server-rendered HTML document for people.
//!
//! No JavaScript: the page reloads itself (`<meta http-equiv="refresh">`), every
//! verdict links to its runbook section, and on a narrow screen the table becomes one
//! card per destination (CSS only). Rows come sorted worst first from [`Board::snapshot`],
//! so what pages is on top. Every value from the configuration or from AWS goes through
//! the escaping [`Html`] writer.
//!
//! [`Board::snapshot`]: super::Board::snapshot

use std::time::{Duration, SystemTime};

mod readers;

use super::html::Html;
use super::{Coverage, HISTORY_LEN, Row, SeenError, history_cell};
use crate::model::{DestinationVerdict, Finding, Outcome, ReplicaFacts};

/// The runbook, as the alert rules' `runbook_url` links to it; sections are
/// `#verdict-<outcome>` and `#finding-<id>`.
pub const RUNBOOK_URL: &str =
    "https://github.com/replicanary/replicanary/blob/main/docs/runbook.md";

/// Seconds between reloads of the page. A verdict lands every `interval` (minutes in
/// production) and ages are read to the minute, so 15 s shows a new verdict soon after it
/// lands while one open tab costs four renders a minute (milliseconds each, even at
/// thousands of rows) — the same rhythm as a common Prometheus scrape interval.
pub const REFRESH_SECONDS: u32 = 15;

/// What the page says about the process, above the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub version: &'static str,
    /// `(index, count)`; `None` before the daemon set it.
    pub shard: Option<(u32, u32)>,
    /// The last (re)load of the configuration; `None` before the first.
    pub config: Option<ConfigLoad>,
    pub canaries_outstanding: i64,
    /// Discovery's coverage: the rules nobody monitors; `None` when it is off.
    pub coverage: Option<std::sync::Arc<Coverage>>,
}

/// The last (re)load of the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigLoad {
    pub successful: bool,
    pub at: SystemTime,
    /// The last successful load (the configuration running after a failed reload).
    pub last_success: Option<SystemTime>,
}

/// How bad an outcome is, for colours: the severity its alert carries.
pub(super) fn severity(o: Outcome) -> &'static str {
    match o {
        Outcome::NotReplicated
        | Outcome::ReplicationFailed
        | Outcome::ReplicaMissing
        | Outcome::Unreadable
        | Outcome::Undecryptable
        | Outcome::ContentMismatch => "critical",
        Outcome::CredentialsFailed
        | Outcome::SourceWriteFailed
        | Outcome::ReplicationTimeout
        | Outcome::NotKmsEncrypted
        | Outcome::WrongKmsKey => "warning",
        Outcome::Error => "transient",
        Outcome::Ok => "ok",
    }
}

/// The whole page for `rows` (already sorted), as of `now`.
pub fn render(rows: &[Row], header: &Header, now: SystemTime) -> String {
    let mut h = Html::with_capacity(4096 + rows.len() * 2048);
    h.raw("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .raw("<meta name=\"color-scheme\" content=\"light dark\">\n")
        .raw("<meta http-equiv=\"refresh\" content=\"")
        .text_fmt(format_args!("{REFRESH_SECONDS}"))
        .raw("\">\n<title>replicanary")
        .text(&tally_title(rows))
        .raw("</title>\n<style>")
        .raw(STYLE)
        .raw("</style>\n</head>\n<body>\n");
    top(&mut h, rows, header, now);
    h.raw("<main>\n");
    if rows.is_empty() {
        h.raw("<p class=\"empty\">No replication to probe: the configuration has none, ")
            .raw("or none falls to this shard.</p>\n");
    } else {
        table(&mut h, rows, now);
        scans(&mut h, rows, now);
    }
    let read = header
        .coverage
        .as_ref()
        .map(|c| ago(now, c.at))
        .unwrap_or_default();
    super::unmonitored::section(&mut h, header.coverage.as_deref(), &read, RUNBOOK_URL);
    h.raw("</main>\n<footer>Sorted worst first. Each verdict and finding links to its ")
        .raw("runbook section. Machine-readable: <a href=\"/metrics\">/metrics</a> · ")
        .raw("<a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a>. ")
        .raw("This page needs no JavaScript and reloads every ")
        .text_fmt(format_args!("{REFRESH_SECONDS} s"))
        .raw(".</footer>\n</body>\n</html>\n");
    h.finish()
}

/// ` — 1 undecryptable, 3 ok` for the tab's title.
fn tally_title(rows: &[Row]) -> String {
    let parts: Vec<String> = tally(rows)
        .iter()
        .map(|(label, _, n)| format!("{n} {label}"))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" — {}", parts.join(", "))
    }
}

/// Destinations by their latest verdict, in precedence order, then those waiting:
/// `(label, severity class, count)`.
fn tally(rows: &[Row]) -> Vec<(&'static str, &'static str, usize)> {
    let mut out: Vec<_> = Outcome::ALL
        .iter()
        .map(|o| {
            let n = rows
                .iter()
                .filter(|r| r.latest.as_ref().is_some_and(|v| v.outcome == *o))
                .count();
            (o.as_str(), severity(*o), n)
        })
        .collect();
    let waiting = rows.iter().filter(|r| r.latest.is_none()).count();
    out.insert(out.len() - 1, ("waiting", "waiting", waiting));
    out.retain(|(_, _, n)| *n > 0);
    out
}

/// The page's header: what runs, its configuration, its canaries, the tally.
fn top(h: &mut Html, rows: &[Row], header: &Header, now: SystemTime) {
    h.raw("<header>\n<h1>replicanary <span class=\"version\">")
        .text(header.version)
        .raw("</span></h1>\n<dl class=\"facts\">\n");
    h.raw("<div><dt>Shard</dt><dd>");
    match header.shard {
        Some((i, n)) if n > 1 => h.text_fmt(format_args!("{i} of {n}")),
        Some(_) => h.raw("unsharded (probes everything)"),
        None => h.raw("not set"),
    };
    h.raw("</dd></div>\n<div><dt>Configuration</dt>");
    config_state(h, header.config, now);
    let replications = rows
        .iter()
        .map(|r| r.replication.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    h.raw("</div>\n<div><dt>Probing</dt><dd>")
        .text_fmt(format_args!(
            "{} destinations of {replications} replications",
            rows.len()
        ))
        .raw("</dd></div>\n<div><dt>Canaries outstanding</dt><dd>")
        .text_fmt(format_args!("{}", header.canaries_outstanding))
        .raw("</dd></div>\n");
    if let Some(c) = &header.coverage {
        h.raw("<div><dt>Unmonitored rules</dt><dd><a href=\"#unmonitored\">")
            .text_fmt(format_args!("{}", c.rules.len()))
            .raw("</a></dd></div>\n");
    }
    h.raw("<div><dt>Page</dt><dd>")
        .text(&humantime::format_rfc3339_seconds(now).to_string())
        .raw(" · reloads every ")
        .text_fmt(format_args!("{REFRESH_SECONDS} s"))
        .raw("</dd></div>\n</dl>\n<ul class=\"tally\" aria-label=\"destinations by verdict\">");
    for (label, sev, n) in tally(rows) {
        h.raw("<li class=\"sev-")
            .attr(sev)
            .raw("\"><b>")
            .text_fmt(format_args!("{n}"))
            .raw("</b> ")
            .text(label)
            .raw("</li>");
    }
    h.raw("</ul>\n</header>\n");
}

fn config_state(h: &mut Html, load: Option<ConfigLoad>, now: SystemTime) {
    match load {
        None => h.raw("<dd>not loaded yet</dd>"),
        Some(c) if c.successful => h
            .raw("<dd class=\"good\">loaded ")
            .text(&ago(now, c.at))
            .raw("</dd>"),
        Some(c) => {
            h.raw("<dd class=\"bad\">reload failed ")
                .text(&ago(now, c.at));
            if let Some(ok) = c.last_success {
                h.raw("; running the one loaded ").text(&ago(now, ok));
            }
            h.raw(" (see the log)</dd>")
        }
    };
}

fn table(h: &mut Html, rows: &[Row], now: SystemTime) {
    h.raw("<table>\n<colgroup><col class=\"c-names\"><col class=\"c-verdict\">")
        .raw("<col class=\"c-history\">")
        .raw("<col class=\"c-latency\"><col class=\"c-key\"><col class=\"c-read\">")
        .raw("<col class=\"c-findings\"><col class=\"c-error\"></colgroup>\n")
        .raw("<thead><tr><th>Replication → destination</th><th>Verdict</th><th>Last ")
        .text_fmt(format_args!("{HISTORY_LEN}"))
        .raw(" probes</th>")
        .raw("<th>Replication latency</th><th>KMS key</th><th>Replica readable (readers)</th>")
        .raw("<th>Findings and fixes</th><th>Last AWS error</th></tr></thead>\n<tbody>\n");
    for row in rows {
        table_row(h, row, now);
    }
    h.raw("</tbody>\n</table>\n");
}

fn table_row(h: &mut Html, row: &Row, now: SystemTime) {
    let sev = row.ranking_outcome().map_or("waiting", severity);
    h.raw("<tr class=\"sev-")
        .attr(sev)
        .raw("\" data-replication=\"")
        .attr(&row.replication)
        .raw("\" data-destination=\"")
        .attr(&row.destination)
        .raw("\" data-outcome=\"")
        .attr(
            row.latest
                .as_ref()
                .map_or("waiting", |v| v.outcome.as_str()),
        )
        .raw("\">\n<td class=\"names\"><div class=\"rep\">")
        .text(&row.replication)
        .raw("</div><div class=\"dst\">→ ")
        .text(&row.destination)
        .raw("</div></td>\n<td class=\"verdict\" data-label=\"Verdict\">");
    verdict_cell(h, row, now);
    h.raw("</td>\n");
    let Some(v) = &row.latest else {
        h.raw("<td class=\"none\" colspan=\"6\">no probe has finished yet</td>\n</tr>\n");
        return;
    };
    cell(h, "History", "history-cell", false, |h| {
        history_cell::render(h, &row.history)
    });
    let key = KeyShown::of(v);
    let r = &v.replica;
    cell(h, "Latency", "fact", v.latency.is_none(), |h| {
        match v.latency {
            Some(l) => h.text(&latency(l)),
            None => h.raw("<span class=\"muted\">—</span>"),
        };
    });
    cell(
        h,
        "KMS key",
        "fact wide",
        matches!(key, KeyShown::Unknown),
        |h| {
            key.render(h, &v.expected_kms_key);
        },
    );
    let unread = !r.read_skipped && r.readable.is_none();
    cell(
        h,
        "Replica readable",
        "fact",
        unread && v.readers.is_empty(),
        |h| {
            readable_cell(h, r);
            readers::readers_list(h, v);
        },
    );
    cell(
        h,
        "Findings and fixes",
        "long",
        row.findings.is_empty(),
        |h| {
            findings_cell(h, &row.findings);
        },
    );
    cell(h, "Last AWS error", "long", row.last_error.is_none(), |h| {
        error_cell(h, row.last_error.as_ref(), v, now);
    });
    h.raw("</tr>\n");
}

/// One cell. `class` says how it sits on a card (`fact`: a short value, several to a
/// line); `blank`: nothing to say, left out of a card.
fn cell(
    h: &mut Html,
    label: &'static str,
    class: &'static str,
    blank: bool,
    body: impl FnOnce(&mut Html),
) {
    h.raw("<td class=\"")
        .raw(class)
        .raw(if blank { " blank" } else { "" })
        .raw("\" data-label=\"")
        .raw(label)
        .raw("\">");
    body(h);
    h.raw("</td>\n");
}

fn badge(h: &mut Html, o: Outcome) {
    h.raw("<a class=\"badge sev-")
        .attr(severity(o))
        .raw("\" href=\"")
        .attr(RUNBOOK_URL)
        .raw("#verdict-")
        .attr(o.as_str())
        .raw("\" title=\"runbook: what this verdict means and what to do\">")
        .text(o.as_str())
        .raw("</a>");
}

fn verdict_cell(h: &mut Html, row: &Row, now: SystemTime) {
    let Some(v) = &row.latest else {
        h.raw("<span class=\"badge sev-waiting\">waiting</span>")
            .raw("<p class=\"reason\">waiting for the first probe</p>");
        return;
    };
    badge(h, v.outcome);
    h.raw(" <span class=\"age\">")
        .text(&ago(now, v.finished_at))
        .raw("</span>");
    match row.standing {
        Some(s) if s.outcome != v.outcome => {
            h.raw("<div class=\"standing\">standing verdict: ");
            badge(h, s.outcome);
            h.raw(" since ").text(&ago(now, s.since)).raw("</div>");
        }
        Some(s) if s.since < v.finished_at => {
            h.raw("<div class=\"standing\">unchanged for ")
                .text(&span(now, s.since))
                .raw("</div>");
        }
        _ => {}
    }
    if let Some(reason) = &v.reason {
        h.raw("<p class=\"reason\">").text(reason).raw("</p>");
    }
    if let Some(key) = &v.key {
        h.raw("<details><summary>canary</summary><dl class=\"canary\"><dt>key</dt><dd><code>")
            .text(key)
            .raw("</code></dd>");
        if let Some(id) = &v.version_id {
            h.raw("<dt>version</dt><dd><code>")
                .text(id)
                .raw("</code></dd>");
        }
        h.raw("</dl></details>");
    }
}

/// What the page says about the replica's key.
enum KeyShown<'a> {
    Expected(&'a str),
    Other(&'a str),
    NotKms(&'a str),
    NotJudged(&'a str),
    /// No replica seen: nothing to say.
    Unknown,
}

impl<'a> KeyShown<'a> {
    fn of(v: &'a DestinationVerdict) -> KeyShown<'a> {
        let r = &v.replica;
        match (
            r.key_matches,
            r.kms_key.as_deref(),
            r.server_side_encryption.as_deref(),
        ) {
            (Some(true), key, _) => KeyShown::Expected(key.unwrap_or(&v.expected_kms_key)),
            (Some(false), key, _) => KeyShown::Other(key.unwrap_or("none")),
            (None, None, Some(sse)) if !sse.starts_with("aws:kms") => KeyShown::NotKms(sse),
            (None, Some(key), _) if v.expected_kms_key.is_empty() => KeyShown::NotJudged(key),
            _ => KeyShown::Unknown,
        }
    }

    fn render(&self, h: &mut Html, expected: &str) {
        match *self {
            KeyShown::Expected(key) => {
                h.raw("<span class=\"yes\">✓ expected key</span>");
                short_key(h, "", key);
            }
            KeyShown::Other(key) => {
                h.raw("<span class=\"no\">✗ another key</span>");
                short_key(h, "replica ", key);
                short_key(h, "expected ", expected);
            }
            KeyShown::NotKms(sse) => {
                h.raw("<span class=\"no\">✗ not SSE-KMS</span><div class=\"key\"><code>")
                    .text(sse)
                    .raw("</code></div>");
            }
            KeyShown::NotJudged(key) => {
                h.raw("<span class=\"muted\">not judged: no expected key</span>");
                short_key(h, "replica ", key);
            }
            KeyShown::Unknown => {
                h.raw("<span class=\"muted\">—</span>");
            }
        }
    }
}

/// `111111111111 · key/b3c637ba…`, with the whole ARN as the title (and in the text for
/// anything that is not a key ARN).
fn short_key(h: &mut Html, label: &'static str, arn: &str) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    h.raw("<div class=\"key\" title=\"")
        .attr(arn)
        .raw("\">")
        .raw(label);
    match parts.as_slice() {
        [_, _, "kms", _, account, resource] => {
            let short: String = resource.chars().take(12).collect();
            let cut = if short.len() < resource.len() {
                "…"
            } else {
                ""
            };
            h.raw("<code>")
                .text(account)
                .raw("</code> · <code>")
                .text(&short)
                .text(cut)
                .raw("</code>");
        }
        _ => {
            h.raw("<code>").text(arn).raw("</code>");
        }
    }
    h.raw("</div>");
}

fn readable_cell(h: &mut Html, r: &ReplicaFacts) {
    if r.read_skipped {
        h.raw("<span class=\"skip\">skipped: archive class</span>");
        if let Some(class) = &r.storage_class {
            h.raw("<div class=\"key\"><code>")
                .text(class)
                .raw("</code></div>");
        }
        return;
    }
    match r.readable {
        Some(true) => h.raw("<span class=\"yes\">✓ readable</span>"),
        Some(false) => h.raw("<span class=\"no\">✗ not readable</span>"),
        None => h.raw("<span class=\"muted\">—</span>"),
    };
}

fn findings_cell(h: &mut Html, findings: &[Finding]) {
    if findings.is_empty() {
        h.raw("<span class=\"muted\">none</span>");
        return;
    }
    h.raw("<ul class=\"findings\">");
    for f in findings {
        h.raw("<li><a class=\"finding\" href=\"")
            .attr(RUNBOOK_URL)
            .raw("#finding-")
            .attr(f.id.as_str())
            .raw("\">")
            .text(f.id.as_str())
            .raw("</a><div class=\"why\">")
            .text(&f.explanation)
            .raw("</div><div class=\"fix\"><b>Fix:</b> ")
            .text(&f.fix)
            .raw("</div></li>");
    }
    h.raw("</ul>");
}

fn error_cell(
    h: &mut Html,
    seen: Option<&SeenError>,
    latest: &DestinationVerdict,
    now: SystemTime,
) {
    let Some(SeenError { error: e, at }) = seen else {
        h.raw("<span class=\"muted\">none</span>");
        return;
    };
    h.raw("<div class=\"op\"><b>").text(e.operation).raw("</b>");
    if let Some(status) = e.status {
        h.raw(" · HTTP ").text_fmt(format_args!("{status}"));
    }
    if let Some(code) = &e.code {
        h.raw(" · <code>").text(code).raw("</code>");
    }
    h.raw("</div>");
    if let Some(m) = &e.message {
        h.raw("<div class=\"message\">").text(m).raw("</div>");
    }
    h.raw("<div class=\"meta\">");
    if let Some(id) = &e.request_id {
        h.raw("request id <code>").text(id).raw("</code> · ");
    }
    h.text(&ago(now, *at));
    if *at < latest.finished_at {
        h.raw(" (an earlier probe)");
    }
    h.raw("</div>");
}

/// `3 s ago`, `4 min ago`, `2 h ago`, `3 d ago`; `just now` for a time not yet past.
pub fn ago(now: SystemTime, then: SystemTime) -> String {
    match now.duration_since(then) {
        Ok(d) if d.as_secs() > 0 => format!("{} ago", span_of(d)),
        _ => "just now".to_owned(),
    }
}

fn span(now: SystemTime, since: SystemTime) -> String {
    span_of(now.duration_since(since).unwrap_or_default())
}

fn span_of(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// `1.4 s`, `2 min 05 s`.
pub fn latency(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let whole = d.as_secs();
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// Inlined, so that the page is one response.
const STYLE: &str = include_str!("page.css");

/// The last complete background scan of each scanned destination: objects per class
/// (only the classes with objects), failing classes marked.
fn scans(h: &mut Html, rows: &[Row], now: SystemTime) {
    let scanned: Vec<&Row> = rows.iter().filter(|r| r.scan.is_some()).collect();
    if scanned.is_empty() {
        return;
    }
    h.raw("<section class=\"scans\">\n<h2>Scans: every real object</h2>\n<table>\n")
        .raw("<thead><tr><th>Replication → destination</th><th>Last complete pass</th>")
        .raw("<th>Objects per class</th></tr></thead>\n<tbody>\n");
    for row in scanned {
        let Some(scan) = &row.scan else { continue };
        h.raw("<tr><td>")
            .text(&row.replication)
            .raw(" → ")
            .text(&row.destination)
            .raw("</td><td>")
            .text(&ago(now, scan.ended))
            .raw("</td><td><ul class=\"tally\">");
        for class in crate::model::ScanClass::ALL {
            let n = scan.counts[class.index()];
            if n == 0 {
                continue;
            }
            let sev = if class.is_failing() { "critical" } else { "ok" };
            h.raw("<li class=\"sev-")
                .attr(sev)
                .raw("\"><b>")
                .text_fmt(format_args!("{n}"))
                .raw("</b> ")
                .text(class.as_str())
                .raw("</li>");
        }
        h.raw("</ul></td></tr>\n");
    }
    h.raw("</tbody>\n</table>\n</section>\n");
}
