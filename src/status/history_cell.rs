//! The status page's history cell: a destination's last verdicts as coloured marks
//! (oldest on the left, each titled with its outcome, time and latency) above a
//! server-rendered SVG sparkline of the replication latency, and a one-line summary that
//! says the same in words (a phone has no hover).
//!
//! Marks and sparkline share one horizontal scale: slot `i` of [`HISTORY_LEN`] is
//! `SLOT` units wide in the SVG's view box and one column of the marks' CSS grid, so a
//! point of the line sits above its verdict's mark.

use std::time::Duration;

use super::history::{HISTORY_LEN, History, Mark};
use super::html::Html;
use super::page::{latency, severity};
use crate::model::Outcome;

/// View-box units per slot (a 4-unit mark and a 2-unit gap).
const SLOT: f64 = 6.0;
/// The sparkline's view box height, and the padding kept above and below the line.
const HEIGHT: f64 = 28.0;
const PAD: f64 = 3.0;

/// The whole cell's content for `history`.
pub fn render(h: &mut Html, history: &History) {
    if history.is_empty() {
        h.raw("<span class=\"muted\">no verdict yet</span>");
        return;
    }
    let marks: Vec<Mark> = history.iter().collect();
    h.raw("<div class=\"history\">");
    mark_list(h, &marks);
    sparkline(h, &marks);
    summary(h, &marks);
    h.raw("</div>");
}

/// One `<li>` per verdict. Its title (the hover, and the name a screen reader reads) is
/// `undecryptable · 2027-01-15 08:02:00Z · 2.0 s`: compact, as it is repeated 30 times a
/// row (docs/performance.md has the page's bytes per row).
fn mark_list(h: &mut Html, marks: &[Mark]) {
    h.raw("<ol class=\"marks\" aria-label=\"the last ")
        .attr_fmt(format_args!("{}", marks.len()))
        .raw(" verdicts, oldest first\">");
    for m in marks {
        let at = humantime::format_rfc3339_seconds(m.at()).to_string();
        h.raw("<li class=\"sev-")
            .attr(severity(m.outcome))
            .raw("\" title=\"")
            .attr(m.outcome.as_str())
            .raw(" · ")
            .attr(&at.replacen('T', " ", 1));
        if let Some(l) = m.latency() {
            h.raw(" · ").attr(&latency(l));
        }
        h.raw("\"></li>");
    }
    h.raw("</ol>");
}

/// The latency line: a polyline per run of verdicts that measured a latency (a verdict
/// without one breaks the line), a dot for a lone point and for the latest one.
fn sparkline(h: &mut Html, marks: &[Mark]) {
    let Some((low, high)) = range(marks) else {
        h.raw("<div class=\"spark-none muted\">no latency measured</div>");
        return;
    };
    let width = SLOT * HISTORY_LEN as f64;
    h.raw("<svg class=\"spark\" viewBox=\"0 0 ")
        .attr_fmt(format_args!("{width} {HEIGHT}"))
        .raw("\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"replication latency, ")
        .attr(&latency(low))
        .raw(" to ")
        .attr(&latency(high))
        .raw("\"><title>replication latency of the last ")
        .text_fmt(format_args!("{}", marks.len()))
        .raw(" probes: ")
        .text(&latency(low))
        .raw(" to ")
        .text(&latency(high))
        .raw("</title>");
    for run in runs(marks, high) {
        if run.len() == 1 {
            dot(h, run[0], "dot");
        } else {
            h.raw("<polyline points=\"");
            for (i, (x, y)) in run.iter().enumerate() {
                if i > 0 {
                    h.raw(" ");
                }
                h.attr_fmt(format_args!("{x:.1},{y:.1}"));
            }
            h.raw("\"/>");
        }
    }
    if let Some(last) = marks.last().and_then(|m| point(marks.len() - 1, m, high)) {
        dot(h, last, "dot last");
    }
    h.raw("</svg>");
}

fn dot(h: &mut Html, (x, y): (f64, f64), class: &'static str) {
    h.raw("<circle class=\"")
        .raw(class)
        .raw("\" cx=\"")
        .attr_fmt(format_args!("{x:.1}"))
        .raw("\" cy=\"")
        .attr_fmt(format_args!("{y:.1}"))
        .raw("\" r=\"2\"/>");
}

/// The lowest and highest latency measured, if any.
fn range(marks: &[Mark]) -> Option<(Duration, Duration)> {
    let mut it = marks.iter().filter_map(Mark::latency);
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), l| (lo.min(l), hi.max(l))))
}

/// The point of slot `i`: x at the slot's centre, y from 0 (bottom) to `high` (top).
fn point(i: usize, m: &Mark, high: Duration) -> Option<(f64, f64)> {
    let l = m.latency()?;
    let top = high.as_secs_f64().max(0.001);
    let y = HEIGHT - PAD - (HEIGHT - 2.0 * PAD) * (l.as_secs_f64() / top).min(1.0);
    Some((SLOT * i as f64 + SLOT / 3.0, y))
}

/// The points in runs of consecutive slots that measured a latency.
fn runs(marks: &[Mark], high: Duration) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, m) in marks.iter().enumerate() {
        match point(i, m, high) {
            Some(p) => current.push(p),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `28 ok · 2 error` in precedence order, then the latency range.
fn summary(h: &mut Html, marks: &[Mark]) {
    h.raw("<div class=\"hsum\">");
    let mut first = true;
    for o in Outcome::ALL {
        let n = marks.iter().filter(|m| m.outcome == o).count();
        if n == 0 {
            continue;
        }
        if !first {
            h.raw(" · ");
        }
        first = false;
        h.raw("<span class=\"sev-")
            .attr(severity(o))
            .raw("\">")
            .text_fmt(format_args!("{n} {}", o.as_str()))
            .raw("</span>");
    }
    if let Some((low, high)) = range(marks) {
        h.raw(" · latency ").text(&latency(low));
        if high > low {
            h.raw("–").text(&latency(high));
        }
    }
    h.raw("</div>");
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::model::DestinationVerdict;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn push(h: &mut History, outcome: Outcome, secs: u64, latency_ms: Option<u64>) {
        let mut v = DestinationVerdict::new("r", "d", outcome);
        v.finished_at = at(secs);
        v.latency = latency_ms.map(Duration::from_millis);
        h.push(&v);
    }

    fn rendered(history: &History) -> String {
        let mut h = Html::default();
        render(&mut h, history);
        h.finish()
    }

    fn count(s: &str, needle: &str) -> usize {
        s.matches(needle).count()
    }

    #[test]
    fn an_empty_history_says_so() {
        let page = rendered(&History::default());
        assert_eq!(page, "<span class=\"muted\">no verdict yet</span>");
    }

    #[test]
    fn one_mark_per_verdict_oldest_first_with_time_outcome_and_latency() {
        let mut h = History::default();
        push(&mut h, Outcome::Ok, 0, Some(1_400));
        push(&mut h, Outcome::Error, 60, None);
        push(&mut h, Outcome::Undecryptable, 120, Some(2_000));
        let page = rendered(&h);
        assert_eq!(count(&page, "<li "), 3, "{page}");
        let ok = page.find("title=\"ok · 2027-01-15 08:00:00Z · 1.4 s\"></li>");
        let err = page.find("title=\"error · 2027-01-15 08:01:00Z\"></li>");
        let bad = page.find("title=\"undecryptable · 2027-01-15 08:02:00Z · 2.0 s\"></li>");
        assert!(ok.is_some() && err.is_some() && bad.is_some(), "{page}");
        assert!(ok < err && err < bad, "oldest first: {page}");
        assert!(page.contains("<li class=\"sev-ok\""), "{page}");
        assert!(page.contains("<li class=\"sev-transient\""), "{page}");
        assert!(page.contains("<li class=\"sev-critical\""), "{page}");
        // The summary in words, precedence order, then the latency range.
        assert!(
            page.contains(
                "<div class=\"hsum\"><span class=\"sev-critical\">1 undecryptable</span> · \
                 <span class=\"sev-transient\">1 error</span> · \
                 <span class=\"sev-ok\">1 ok</span> · latency 1.4 s–2.0 s</div>"
            ),
            "{page}"
        );
    }

    #[test]
    fn the_sparkline_scales_to_the_highest_latency_and_breaks_where_none_was_measured() {
        let mut h = History::default();
        push(&mut h, Outcome::Ok, 0, Some(1_000));
        push(&mut h, Outcome::Ok, 1, Some(2_000));
        push(&mut h, Outcome::Error, 2, None);
        push(&mut h, Outcome::Ok, 3, Some(500));
        let page = rendered(&h);
        assert!(
            page.contains("<svg class=\"spark\" viewBox=\"0 0 180 28\""),
            "{page}"
        );
        // Slots 0 and 1 form a line: x at each slot's mark (6 units a slot), y from the
        // bottom (25) to the top (3) for the highest latency.
        assert!(
            page.contains("<polyline points=\"2.0,14.0 8.0,3.0\"/>"),
            "{page}"
        );
        assert_eq!(count(&page, "<polyline"), 1, "{page}");
        // Slot 3 stands alone (slot 2 measured nothing): a dot, and the latest's dot.
        assert!(
            page.contains("<circle class=\"dot\" cx=\"20.0\" cy=\"19.5\" r=\"2\"/>"),
            "{page}"
        );
        assert!(
            page.contains("<circle class=\"dot last\" cx=\"20.0\" cy=\"19.5\" r=\"2\"/>"),
            "{page}"
        );
        assert!(page.contains("aria-label=\"replication latency, 0.5 s to 2.0 s\""));
    }

    #[test]
    fn a_history_without_latency_has_no_line() {
        let mut h = History::default();
        push(&mut h, Outcome::CredentialsFailed, 0, None);
        let page = rendered(&h);
        assert!(!page.contains("<svg"), "{page}");
        assert!(page.contains("no latency measured"), "{page}");
        assert!(page.contains("1 credentials_failed</span></div>"), "{page}");
    }

    #[test]
    fn a_full_ring_renders_its_length_and_no_more() {
        let mut h = History::default();
        for i in 0..(HISTORY_LEN as u64 + 12) {
            push(&mut h, Outcome::Ok, i * 60, Some(1_000 + i * 10));
        }
        let page = rendered(&h);
        assert_eq!(count(&page, "<li "), HISTORY_LEN);
        assert!(page.contains("aria-label=\"the last 30 verdicts, oldest first\""));
        // The oldest kept is the 13th pushed; the last slot's x is 29 × 6 + 2.
        assert!(page.contains("2027-01-15 08:12:00Z"), "{page}");
        assert!(!page.contains("2027-01-15 08:11:00Z"), "{page}");
        assert!(page.contains("cx=\"176.0\""), "{page}");
        assert!(page.contains("30 ok</span>"), "{page}");
    }
}
