//! The readers under a destination's readability: one line per reader with its outcome
//! (`restore: ok`, `analytics: undecryptable`), linked to the runbook when it fails.

use super::super::html::Html;
use super::RUNBOOK_URL;
use crate::model::{DestinationVerdict, ReaderOutcome};

/// Nothing when the destination has no readers.
pub(super) fn readers_list(h: &mut Html, v: &DestinationVerdict) {
    if v.readers.is_empty() {
        return;
    }
    h.raw("<ul class=\"readers\">");
    for r in &v.readers {
        let class = match r.outcome {
            ReaderOutcome::Ok => "yes",
            ReaderOutcome::Skipped | ReaderOutcome::Error => "skip",
            _ => "no",
        };
        h.raw("<li class=\"reader\" data-reader=\"")
            .attr(&r.reader)
            .raw("\" title=\"")
            .attr(&r.role_arn)
            .raw("\"><span class=\"")
            .attr(class)
            .raw("\">")
            .text(&r.reader)
            .raw(": ")
            .text(r.outcome.as_str())
            .raw("</span>");
        let anchor = match r.outcome {
            ReaderOutcome::CredentialsFailed => Some("#replicanaryreaderrolecannotbeassumed"),
            ReaderOutcome::Undecryptable | ReaderOutcome::Unreadable => {
                Some("#replicanaryreadercannotread")
            }
            _ => None,
        };
        if let Some(anchor) = anchor {
            h.raw(" <a href=\"")
                .attr(RUNBOOK_URL)
                .raw(anchor)
                .raw("\">runbook</a>");
        }
        h.raw("</li>");
    }
    h.raw("</ul>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, ReaderVerdict};

    #[test]
    fn each_reader_is_a_line_and_a_failing_one_links_to_its_runbook_section() {
        let mut v = DestinationVerdict::new("r", "d", Outcome::Ok);
        let arn = "arn:aws:iam::222222222222:role/x";
        v.readers = vec![
            ReaderVerdict::new("fine", arn, ReaderOutcome::Ok),
            ReaderVerdict::new("restore", arn, ReaderOutcome::Undecryptable),
            ReaderVerdict::new("dr<x>", arn, ReaderOutcome::CredentialsFailed),
        ];
        let mut h = Html::default();
        readers_list(&mut h, &v);
        let out = h.finish();
        assert!(out.contains("fine: ok"), "{out}");
        assert!(out.contains("restore: undecryptable"), "{out}");
        assert!(out.contains("#replicanaryreadercannotread"), "{out}");
        assert!(
            out.contains("#replicanaryreaderrolecannotbeassumed"),
            "{out}"
        );
        assert!(out.contains("dr&lt;x&gt;"), "escaped: {out}");
        assert_eq!(out.matches("runbook</a>").count(), 2, "{out}");

        let mut h = Html::default();
        readers_list(&mut h, &DestinationVerdict::new("r", "d", Outcome::Ok));
        assert!(h.finish().is_empty(), "no readers, no list");
    }
}
