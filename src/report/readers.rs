//! The readers' part of `check`'s report: one line per reader under its destination, and
//! the failing readers named (`replication/destination/reader`), which make `check` exit 1.

use std::fmt::Write;

use crate::model::{DestinationVerdict, ReaderOutcome};

/// `replication/destination/reader` of every reader whose outcome is a failure.
pub(super) fn failing(verdicts: &[DestinationVerdict]) -> Vec<String> {
    verdicts
        .iter()
        .flat_map(|v| {
            v.readers
                .iter()
                .filter(|r| r.outcome.is_failure())
                .map(move |r| format!("{}/{}/{}", v.replication, v.destination, r.reader))
        })
        .collect()
}

/// The destination's readers, one line each (with why and the finding ids when not ok).
pub(super) fn text(out: &mut String, v: &DestinationVerdict) {
    for r in &v.readers {
        let shown = if r.outcome == ReaderOutcome::Ok {
            "ok".to_owned()
        } else {
            r.outcome.as_str().to_uppercase()
        };
        let _ = writeln!(
            out,
            "    reader:       {} ({}): {shown}",
            r.reader, r.role_arn
        );
        if r.outcome != ReaderOutcome::Ok {
            if let Some(why) = &r.reason {
                let _ = writeln!(out, "      why:        {why}");
            }
            if let Some(e) = &r.aws_error {
                let _ = writeln!(out, "      aws error:  {e}");
            }
        }
    }
}

/// `2 of 4 readers ok` under the destinations' count, when any reader read.
pub(super) fn summary(out: &mut String, verdicts: &[DestinationVerdict]) {
    let all: Vec<_> = verdicts.iter().flat_map(|v| &v.readers).collect();
    if all.is_empty() {
        return;
    }
    let ok = all
        .iter()
        .filter(|r| r.outcome == ReaderOutcome::Ok)
        .count();
    let _ = writeln!(out, "{ok} of {} readers ok", all.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, ReaderVerdict};
    use crate::report::{Report, ReportFormat};

    fn verdict(readers: &[(&str, ReaderOutcome)]) -> DestinationVerdict {
        let mut v = DestinationVerdict::new("r", "d", Outcome::Ok);
        v.readers = readers
            .iter()
            .map(|(n, o)| ReaderVerdict::new(n, "arn:aws:iam::222222222222:role/x", *o))
            .collect();
        v
    }

    #[test]
    fn a_failing_reader_fails_check_and_is_named() {
        let v = vec![verdict(&[
            ("fine", ReaderOutcome::Ok),
            ("restore", ReaderOutcome::Undecryptable),
            ("later", ReaderOutcome::Skipped),
        ])];
        assert!(!DestinationVerdict::clean(&v));
        assert_eq!(failing(&v), ["r/d/restore"]);
        let doc: serde_json::Value =
            serde_json::from_str(&DestinationVerdict::render(&v, ReportFormat::Json))
                .expect("JSON");
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["failing_readers"][0], "r/d/restore");
        assert_eq!(doc["verdicts"][0]["readers"][1]["outcome"], "undecryptable");
        let text = DestinationVerdict::render(&v, ReportFormat::Text);
        assert!(text.contains("reader:       restore"), "{text}");
        assert!(text.contains("1 of 3 readers ok"), "{text}");
    }

    #[test]
    fn skipped_and_ok_readers_keep_check_clean() {
        let v = vec![verdict(&[
            ("fine", ReaderOutcome::Ok),
            ("later", ReaderOutcome::Skipped),
        ])];
        assert!(DestinationVerdict::clean(&v));
    }
}
