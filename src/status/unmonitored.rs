//! The status page's coverage section: the enabled replication rules of the estate that no
//! probe stands for, as the last discovery pass found them (`discovery.coverage`).
//!
//! One row per rule — source bucket and rule id, account and region, destination, the
//! rule's `ReplicaKmsKeyID`, why it is not probed — a table on wide screens and a card
//! per rule on phones, like the verdicts above it. Every value goes through the escaping
//! writer. At most [`MAX_ROWS`] rules are listed; `replicanary discover` lists them all.

use super::Coverage;
use super::html::Html;
use crate::model::UnmonitoredRule;

/// Rules listed on the page at most (an estate of thousands of unopted buckets with rules
/// would make a page of megabytes that nobody reads).
pub const MAX_ROWS: usize = 500;

/// The section, or nothing when coverage is off. `read` says when the rules were read
/// ("4 s ago"); `runbook` is the runbook's URL (the page's `RUNBOOK_URL`).
pub fn section(h: &mut Html, coverage: Option<&Coverage>, read: &str, runbook: &str) {
    let Some(c) = coverage else { return };
    h.raw(
        "<section id=\"unmonitored\" class=\"coverage\">\n<h2>Replication rules nobody monitors (",
    )
    .text_fmt(format_args!("{}", c.rules.len()))
    .raw(")</h2>\n<p class=\"muted\">Enabled rules no replication here probes: their buckets ")
    .raw("did not opt in, or discovery cannot place a canary for them. Read ")
    .text(read)
    .raw(". <a href=\"")
    .attr(runbook)
    .raw("#replicanaryunmonitoredreplicationrules\">What to do</a>.</p>\n");
    if c.rules.is_empty() {
        h.raw("<p class=\"empty\">None: every enabled replication rule discovery can read is probed.</p>\n</section>\n");
        return;
    }
    h.raw("<table class=\"unmonitored\">\n<colgroup><col class=\"c-rule\"><col class=\"c-where\">")
        .raw("<col class=\"c-to\"><col class=\"c-replica-key\"><col class=\"c-why\"></colgroup>\n")
        .raw("<thead><tr><th>Source bucket / rule</th><th>Account, region</th>")
        .raw("<th>Destination</th><th>ReplicaKmsKeyID</th><th>Why not probed</th></tr></thead>\n<tbody>\n");
    for r in c.rules.iter().take(MAX_ROWS) {
        row(h, r);
    }
    h.raw("</tbody>\n</table>\n");
    if c.rules.len() > MAX_ROWS {
        h.raw("<p class=\"muted\">")
            .text_fmt(format_args!("{} more", c.rules.len() - MAX_ROWS))
            .raw(": <code>replicanary discover</code> lists them all.</p>\n");
    }
    h.raw("</section>\n");
}

fn row(h: &mut Html, r: &UnmonitoredRule) {
    h.raw("<tr class=\"sev-info\" data-bucket=\"")
        .attr(&r.bucket)
        .raw("\" data-rule=\"")
        .attr(r.rule_id.as_deref().unwrap_or(""))
        .raw("\">\n<td class=\"names\"><div class=\"rep\">")
        .text(&r.bucket)
        .raw("</div><div class=\"dst\">rule ");
    match &r.rule_id {
        Some(id) => h.raw("<code>").text(id).raw("</code>"),
        None => h.raw("<span class=\"muted\">(no ID)</span>"),
    };
    h.raw("</div></td>\n<td class=\"fact\" data-label=\"Account, region\">")
        .text(&r.source_account)
        .raw("<div class=\"meta\">")
        .text(&r.region)
        .raw("</div></td>\n<td class=\"fact wide\" data-label=\"Destination\">")
        .text(&r.destination_bucket);
    if let Some(a) = &r.destination_account {
        h.raw("<div class=\"meta\">account ").text(a).raw("</div>");
    }
    h.raw("</td>\n<td class=\"fact wide\" data-label=\"ReplicaKmsKeyID\">");
    match &r.replica_kms_key_id {
        Some(k) => h.raw("<code>").text(k).raw("</code>"),
        None => h.raw("<span class=\"muted\">none</span>"),
    };
    h.raw("</td>\n<td class=\"fact\" data-label=\"Why not probed\"><code>")
        .text(r.reason)
        .raw("</code></td>\n</tr>\n");
}
