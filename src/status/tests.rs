//! The board (what a verdict changes, what stands, what is removed, the order) and the
//! page rendered from it (order, colours, escaping, skipped reads, findings, header).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::page::{self, ConfigLoad, Header, RUNBOOK_URL};
use super::{Board, Row};
use crate::model::{
    AwsError, DestinationVerdict, ErrorClass, Finding, FindingId, Outcome, ReplicaFacts,
};

const EXPECTED: &str =
    "arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab";
const SOURCE_KEY: &str =
    "arn:aws:kms:ap-northeast-1:111111111111:key/2222bbbb-12ab-34cd-56ef-1234567890ab";
const SCRIPT: &str = "<script>alert(1)</script>";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn verdict(rep: &str, dest: &str, outcome: Outcome, secs: u64) -> DestinationVerdict {
    let mut v = DestinationVerdict::new(rep, dest, outcome);
    v.finished_at = at(secs);
    v.expected_kms_key = EXPECTED.to_owned();
    v.findings = Some(Vec::new());
    v
}

fn ok(rep: &str, dest: &str, secs: u64) -> DestinationVerdict {
    let mut v = verdict(rep, dest, Outcome::Ok, secs);
    v.latency = Some(Duration::from_millis(1400));
    v.replica = ReplicaFacts {
        server_side_encryption: Some("aws:kms".to_owned()),
        kms_key: Some(EXPECTED.to_owned()),
        key_matches: Some(true),
        readable: Some(true),
        ..ReplicaFacts::default()
    };
    v
}

fn finding(id: FindingId, fix: &str) -> Finding {
    Finding {
        id,
        explanation: format!("why {id}"),
        fix: fix.to_owned(),
    }
}

fn denied(message: &str) -> AwsError {
    AwsError {
        code: Some("AccessDenied".to_owned()),
        message: Some(message.to_owned()),
        request_id: Some("REQ-1".to_owned()),
        status: Some(403),
        ..AwsError::new("GetObject", ErrorClass::AccessDenied)
    }
}

fn undecryptable(rep: &str, dest: &str, secs: u64) -> DestinationVerdict {
    let mut v = verdict(rep, dest, Outcome::Undecryptable, secs)
        .with_reason("KMS refuses the destination the replica's key")
        .with_error(Some(denied(
            "The ciphertext refers to a key you cannot use",
        )));
    v.latency = Some(Duration::from_secs(2));
    v.key = Some(format!("replicanary/{SCRIPT}/{rep}/20270115T080000Z-00"));
    v.replica = ReplicaFacts {
        server_side_encryption: Some("aws:kms".to_owned()),
        kms_key: Some(SOURCE_KEY.to_owned()),
        key_matches: Some(false),
        readable: Some(false),
        ..ReplicaFacts::default()
    };
    v.findings = Some(vec![finding(
        FindingId::ReplicaKmsKeyOtherAccount,
        "set ReplicaKmsKeyID to a key of the destination account",
    )]);
    v
}

fn names(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .map(|r| format!("{}/{}", r.replication, r.destination))
        .collect()
}

// ---- the board ------------------------------------------------------------------------

#[test]
fn a_registered_destination_waits_until_its_first_verdict() {
    let b = Board::new();
    b.register_destination("r", "d");
    let rows = b.snapshot();
    assert_eq!(names(&rows), ["r/d"]);
    assert!(rows[0].latest.is_none() && rows[0].standing.is_none());
    assert_eq!(rows[0].ranking_outcome(), None);

    b.record(&ok("r", "d", 10));
    // Registering again (a reload that kept the replication) keeps what was learnt.
    b.register_destination("r", "d");
    let row = &b.snapshot()[0];
    assert_eq!(row.latest.as_ref().map(|v| v.outcome), Some(Outcome::Ok));
    assert_eq!(row.standing.map(|s| s.outcome), Some(Outcome::Ok));
}

#[test]
fn an_error_leaves_the_standing_verdict_and_its_findings() {
    let b = Board::new();
    b.record(&undecryptable("r", "d", 10));
    b.record(&undecryptable("r", "d", 20));
    let mut transient = verdict("r", "d", Outcome::Error, 30);
    transient.findings = None; // an error verdict does not look for causes
    transient.aws_error = Some(AwsError {
        code: Some("SlowDown".to_owned()),
        status: Some(503),
        ..AwsError::new("HeadObject", ErrorClass::Transient)
    });
    b.record(&transient);

    let row = &b.snapshot()[0];
    assert_eq!(row.latest.as_ref().map(|v| v.outcome), Some(Outcome::Error));
    let standing = row.standing.expect("a conclusive verdict was seen");
    assert_eq!(standing.outcome, Outcome::Undecryptable);
    assert_eq!(standing.since, at(10), "since the first verdict of the run");
    assert_eq!(row.findings.len(), 1, "the undecryptable findings stand");
    assert_eq!(row.findings[0].id, "replica_kms_key_other_account");
    let e = row.last_error.as_ref().expect("the latest error");
    assert_eq!(e.error.code.as_deref(), Some("SlowDown"));
    assert_eq!(e.at, at(30));
    assert_eq!(row.ranking_outcome(), Some(Outcome::Undecryptable));
}

#[test]
fn a_new_conclusive_outcome_restarts_since_and_replaces_findings() {
    let b = Board::new();
    b.record(&undecryptable("r", "d", 10));
    b.record(&ok("r", "d", 20));
    b.record(&ok("r", "d", 30));
    let row = &b.snapshot()[0];
    let standing = row.standing.expect("standing");
    assert_eq!(
        (standing.outcome, standing.since),
        (Outcome::Ok, at(20)),
        "ok since the first ok"
    );
    assert!(row.findings.is_empty(), "ok looked and found nothing");
    // The last AWS error is kept, with its own time, after the verdicts moved on.
    let e = row.last_error.as_ref().expect("still shown");
    assert_eq!((e.error.operation, e.at), ("GetObject", at(10)));
}

#[test]
fn removed_replications_and_destinations_leave_the_board() {
    let b = Board::new();
    for (r, d) in [("a", "x"), ("a", "y"), ("b", "x"), ("ab", "x")] {
        b.register_destination(r, d);
    }
    b.record(&ok("a", "x", 1));
    b.remove_replication("a");
    assert_eq!(names(&b.snapshot()), ["ab/x", "b/x"]);
    b.remove_destination("b", "x");
    assert_eq!(names(&b.snapshot()), ["ab/x"]);
    b.remove_replication("nothing-here");
    b.remove_destination("ab", "nothing-here");
    assert_eq!(names(&b.snapshot()), ["ab/x"]);
}

#[test]
fn rows_come_worst_first_then_by_name() {
    let b = Board::new();
    b.record(&ok("a-ok", "d", 1));
    b.register_destination("b-waiting", "d");
    b.record(&verdict("c-error", "d", Outcome::Error, 1));
    b.record(&undecryptable("z-undecryptable", "d", 1));
    b.record(&undecryptable("y-undecryptable", "d", 1));
    b.record(&verdict(
        "x-credentials",
        "d",
        Outcome::CredentialsFailed,
        1,
    ));
    // An error over a standing ok ranks as error; over a standing wrong key, as the key.
    b.record(&ok("d-ok-then-error", "d", 1));
    b.record(&verdict("d-ok-then-error", "d", Outcome::Error, 2));
    b.record(&verdict("e-wrong-key", "d", Outcome::WrongKmsKey, 1));
    b.record(&verdict("e-wrong-key", "d", Outcome::Error, 2));
    assert_eq!(
        names(&b.snapshot()),
        [
            "x-credentials/d",
            "y-undecryptable/d",
            "z-undecryptable/d",
            "e-wrong-key/d",
            "c-error/d",
            "d-ok-then-error/d",
            "b-waiting/d",
            "a-ok/d",
        ]
    );
}

// ---- the page -------------------------------------------------------------------------

fn header() -> Header {
    Header {
        version: "9.8.7",
        shard: Some((2, 4)),
        config: Some(ConfigLoad {
            successful: true,
            at: at(0),
            last_success: Some(at(0)),
        }),
        canaries_outstanding: 3,
        coverage: None,
    }
}

/// A board with a broken destination, an archived one, a healthy one and one waiting.
fn board() -> Board {
    let b = Board::new();
    b.record(&ok("healthy", "dst", 95));
    let mut archived = ok("archive", "deep", 90);
    archived.replica.readable = None;
    archived.replica.read_skipped = true;
    archived.replica.storage_class = Some("DEEP_ARCHIVE".to_owned());
    b.record(&archived);
    let mut broken = undecryptable("wrong-key", "dst", 97);
    broken.aws_error = Some(denied(&format!("key {SCRIPT} & \"friends\"")));
    b.record(&broken);
    b.register_destination("new", "dst");
    b
}

/// The HTML of the row of one replication.
fn row_html<'a>(html: &'a str, replication: &str) -> &'a str {
    let start = html
        .find(&format!("data-replication=\"{replication}\""))
        .unwrap_or_else(|| panic!("no row for {replication}"));
    let end = html[start..]
        .find("</tr>")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

#[test]
fn the_page_lists_rows_worst_first_with_their_colours() {
    let html = page::render(&board().snapshot(), &header(), at(100));
    let pos = |r: &str| html.find(&format!("data-replication=\"{r}\"")).expect(r);
    assert!(pos("wrong-key") < pos("new"));
    assert!(pos("new") < pos("archive"), "waiting before ok");
    assert!(pos("archive") < pos("healthy"), "ok rows by name");

    let broken = row_html(&html, "wrong-key");
    assert!(broken.starts_with(
        "data-replication=\"wrong-key\" data-destination=\"dst\" data-outcome=\"undecryptable\""
    ));
    assert!(html.contains("<tr class=\"sev-critical\" data-replication=\"wrong-key\""));
    assert!(html.contains("<tr class=\"sev-ok\" data-replication=\"healthy\""));
    assert!(html.contains("<tr class=\"sev-waiting\" data-replication=\"new\""));
    assert!(broken.contains(&format!(
        "<a class=\"badge sev-critical\" href=\"{RUNBOOK_URL}#verdict-undecryptable\""
    )));
    assert!(broken.contains(">undecryptable</a> <span class=\"age\">3 s ago</span>"));
    assert!(broken.contains("<td class=\"fact\" data-label=\"Latency\">2.0 s</td>"));
    assert!(broken.contains("✗ another key"));
    assert!(broken.contains("<code>111111111111</code> · <code>key/2222bbbb…</code>"));
    assert!(broken.contains("✗ not readable"));
    assert!(row_html(&html, "healthy").contains("✓ expected key"));
    assert!(row_html(&html, "healthy").contains("✓ readable"));
}

#[test]
fn everything_from_aws_and_the_configuration_is_escaped() {
    let html = page::render(&board().snapshot(), &header(), at(100));
    // The page has no script at all: neither its own nor one smuggled in.
    assert!(!html.to_lowercase().contains("<script"), "{html}");
    let broken = row_html(&html, "wrong-key");
    assert!(broken.contains("key &lt;script&gt;alert(1)&lt;/script&gt; &amp; \"friends\""));
    assert!(
        broken.contains("<code>replicanary/&lt;script&gt;alert(1)&lt;/script&gt;/wrong-key/"),
        "the canary key: {broken}"
    );
    assert!(broken.contains("request id <code>REQ-1</code>"));
    assert!(broken.contains("<b>GetObject</b> · HTTP 403 · <code>AccessDenied</code>"));
}

#[test]
fn names_are_escaped_in_attributes_and_text() {
    let b = Board::new();
    b.register_destination("r\"><script>x</script>", "d'&");
    let html = page::render(&b.snapshot(), &header(), at(0));
    assert!(!html.contains("<script>x"));
    assert!(html.contains(
        "data-replication=\"r&quot;&gt;&lt;script&gt;x&lt;/script&gt;\" data-destination=\"d&#39;&amp;\""
    ));
    assert!(html.contains("<div class=\"rep\">r\"&gt;&lt;script&gt;x&lt;/script&gt;</div>"));
}

#[test]
fn an_archived_replica_shows_its_read_skipped() {
    let html = page::render(&board().snapshot(), &header(), at(100));
    let archived = row_html(&html, "archive");
    assert!(archived.contains("skipped: archive class"), "{archived}");
    assert!(archived.contains("<code>DEEP_ARCHIVE</code>"));
    assert!(!archived.contains("not readable"));
}

#[test]
fn findings_link_to_the_runbook_and_carry_their_fix() {
    let html = page::render(&board().snapshot(), &header(), at(100));
    let broken = row_html(&html, "wrong-key");
    assert!(broken.contains(&format!(
        "<a class=\"finding\" href=\"{RUNBOOK_URL}#finding-replica_kms_key_other_account\">replica_kms_key_other_account</a>"
    )));
    assert!(broken.contains("<div class=\"why\">why replica_kms_key_other_account</div>"));
    assert!(broken.contains(
        "<div class=\"fix\"><b>Fix:</b> set ReplicaKmsKeyID to a key of the destination account</div>"
    ));
    assert!(
        row_html(&html, "healthy")
            .contains("data-label=\"Findings and fixes\"><span class=\"muted\">none</span>")
    );
}

#[test]
fn a_destination_without_a_verdict_waits_for_the_first_probe() {
    let html = page::render(&board().snapshot(), &header(), at(100));
    let waiting = row_html(&html, "new");
    assert!(waiting.contains("waiting for the first probe"));
    assert!(!waiting.contains("data-label=\"Latency\""));
}

#[test]
fn an_error_shows_the_standing_verdict_under_it() {
    let b = Board::new();
    b.record(&undecryptable("r", "d", 10));
    b.record(&verdict("r", "d", Outcome::Error, 250));
    let html = page::render(&b.snapshot(), &header(), at(310));
    let row = row_html(&html, "r");
    assert!(html.contains("<tr class=\"sev-critical\" data-replication=\"r\""));
    assert!(row.contains(">error</a> <span class=\"age\">1 min ago</span>"));
    assert!(row.contains("standing verdict: <a class=\"badge sev-critical\""));
    assert!(row.contains(">undecryptable</a> since 5 min ago"));
    assert!(
        row.contains("(an earlier probe)"),
        "the error is the undecryptable's"
    );
}

#[test]
fn the_header_says_what_runs_and_the_page_refreshes_itself() {
    let html = page::render(&board().snapshot(), &header(), at(100));
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"15\">"));
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(html.contains("<title>replicanary — 1 undecryptable, 1 waiting, 2 ok</title>"));
    assert!(html.contains("<span class=\"version\">9.8.7</span>"));
    assert!(html.contains("<dd>2 of 4</dd>"));
    assert!(html.contains("<dd class=\"good\">loaded 1 min ago</dd>"));
    assert!(html.contains("4 destinations of 4 replications"));
    assert!(html.contains("<dt>Canaries outstanding</dt><dd>3</dd>"));
    assert!(html.contains("<li class=\"sev-critical\"><b>1</b> undecryptable</li>"));
    assert!(html.contains("<li class=\"sev-waiting\"><b>1</b> waiting</li>"));
    assert!(html.contains("<li class=\"sev-ok\"><b>2</b> ok</li>"));

    let mut failed = header();
    failed.shard = Some((0, 1));
    failed.config = Some(ConfigLoad {
        successful: false,
        at: at(90),
        last_success: Some(at(0)),
    });
    let html = page::render(&[], &failed, at(100));
    assert!(html.contains("unsharded"));
    assert!(html.contains("reload failed 10 s ago; running the one loaded 1 min ago"));
    assert!(html.contains("No replication to probe"));
    assert!(html.contains("<title>replicanary</title>"));
}

#[test]
fn ages_and_latencies_read_as_people_say_them() {
    let now = at(1_000_000);
    let ago = |s: u64| page::ago(now, now - Duration::from_secs(s));
    assert_eq!(ago(0), "just now");
    assert_eq!(ago(3), "3 s ago");
    assert_eq!(ago(59), "59 s ago");
    assert_eq!(ago(60), "1 min ago");
    assert_eq!(ago(4 * 60 + 59), "4 min ago");
    assert_eq!(ago(3 * 3600), "3 h ago");
    assert_eq!(ago(47 * 3600), "47 h ago");
    assert_eq!(ago(3 * 86_400), "3 d ago");
    assert_eq!(page::ago(now, now + Duration::from_secs(5)), "just now");
    assert_eq!(page::latency(Duration::from_millis(1449)), "1.4 s");
    assert_eq!(page::latency(Duration::from_secs(125)), "2 min 05 s");
}

#[test]
fn a_thousand_rows_render_in_one_page() {
    let b = Board::new();
    for i in 0..1000 {
        b.record(&undecryptable(&format!("r{i:04}"), "d", 1));
    }
    let started = std::time::Instant::now();
    let html = page::render(&b.snapshot(), &header(), at(100));
    let took = started.elapsed();
    assert_eq!(html.matches("<tr class=").count(), 1000);
    assert!(html.find("r0000").expect("first") < html.find("r0999").expect("last"));
    // Generous (debug build, shared machine): rendering is milliseconds, not seconds.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

// ---- coverage: the rules nobody monitors ------------------------------------------------

fn unmonitored(
    bucket: &str,
    rule_id: Option<&str>,
    key: Option<&str>,
) -> crate::model::UnmonitoredRule {
    crate::model::UnmonitoredRule {
        source_account: "111111111111".to_owned(),
        region: "ap-northeast-1".to_owned(),
        bucket: bucket.to_owned(),
        rule_id: rule_id.map(str::to_owned),
        destination_bucket: "audit-dst".to_owned(),
        destination_account: Some("222222222222".to_owned()),
        replica_kms_key_id: key.map(str::to_owned),
        reason: "untagged",
    }
}

fn with_coverage(rules: Vec<crate::model::UnmonitoredRule>) -> Header {
    Header {
        coverage: Some(std::sync::Arc::new(super::Coverage { rules, at: at(40) })),
        ..header()
    }
}

#[test]
fn the_rules_nobody_monitors_are_listed_escaped_under_the_verdicts() {
    let b = Board::new();
    b.set_coverage(Some(super::Coverage {
        rules: vec![
            unmonitored("logs-src", Some(SCRIPT), Some(EXPECTED)),
            unmonitored("media-src", None, None),
        ],
        at: at(40),
    }));
    let head = Header {
        coverage: b.coverage(),
        ..header()
    };
    let html = page::render(&board().snapshot(), &head, at(100));
    let section = &html[html.find("<section id=\"unmonitored\"").expect("section")..];
    assert!(
        section.contains("Replication rules nobody monitors (2)"),
        "{section}"
    );
    assert!(html.find("<section id=\"unmonitored\"") > html.find("</table>"));
    assert!(!section.contains(SCRIPT), "{section}");
    assert!(section.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(section.contains("data-bucket=\"logs-src\""));
    assert!(section.contains(&format!("<code>{EXPECTED}</code>")));
    assert!(section.contains("(no ID)") && section.contains("<span class=\"muted\">none</span>"));
    assert!(section.contains("<code>untagged</code>"));
    assert!(
        section.contains("account 222222222222")
            && section.contains("111111111111<div class=\"meta\">ap-northeast-1</div>")
    );
    assert!(section.contains("Read 1 min ago."), "{section}");
    assert!(section.contains("#replicanaryunmonitoredreplicationrules"));
    // The header counts them, linking to the section; each row is a card on a phone.
    assert!(html.contains("<dt>Unmonitored rules</dt><dd><a href=\"#unmonitored\">2</a>"));
    assert!(section.contains("data-label=\"ReplicaKmsKeyID\""));
}

#[test]
fn no_coverage_no_section_and_none_says_so() {
    let html = page::render(&board().snapshot(), &header(), at(100));
    assert!(!html.contains("id=\"unmonitored\"") && !html.contains("Unmonitored rules"));
    let html = page::render(&board().snapshot(), &with_coverage(Vec::new()), at(100));
    assert!(html.contains("Replication rules nobody monitors (0)"));
    assert!(html.contains("None: every enabled replication rule"));
}

#[test]
fn a_long_list_is_cut_with_a_pointer_to_discover() {
    let many: Vec<_> = (0..super::unmonitored::MAX_ROWS + 7)
        .map(|i| unmonitored(&format!("b-{i:04}"), Some("r"), None))
        .collect();
    let html = page::render(&[], &with_coverage(many), at(100));
    assert_eq!(
        html.matches("<tr class=\"sev-info\"").count(),
        super::unmonitored::MAX_ROWS
    );
    assert!(html.contains("7 more: <code>replicanary discover</code> lists them all."));
}

// ---- the history ----------------------------------------------------------------------

#[test]
fn each_row_keeps_its_own_bounded_history_and_loses_it_with_the_row() {
    let b = Board::new();
    for i in 0..(super::HISTORY_LEN as u64 + 5) {
        b.record(&ok("healthy", "dst", i));
    }
    b.record(&undecryptable("wrong-key", "dst", 50));
    let rows = b.snapshot();
    let of = |r: &str| {
        rows.iter()
            .find(|row| row.replication == r)
            .map(|row| row.history.iter().map(|m| m.outcome).collect::<Vec<_>>())
    };
    assert_eq!(of("healthy"), Some(vec![Outcome::Ok; super::HISTORY_LEN]));
    assert_eq!(of("wrong-key"), Some(vec![Outcome::Undecryptable]));

    // A destination that leaves and comes back starts a new history.
    b.remove_destination("wrong-key", "dst");
    b.record(&ok("wrong-key", "dst", 60));
    let rows = b.snapshot();
    let back = rows.iter().find(|row| row.replication == "wrong-key");
    assert_eq!(back.map(|r| r.history.len()), Some(1));
}

#[test]
fn the_page_shows_each_rows_history_in_its_own_cell() {
    let b = board();
    b.record(&ok("wrong-key", "dst", 98));
    b.record(&undecryptable("wrong-key", "dst", 99));
    let html = page::render(&b.snapshot(), &header(), at(100));
    assert!(html.contains("<th>Last 30 probes</th>"), "{html}");
    let broken = row_html(&html, "wrong-key");
    assert!(
        broken
            .contains("<td class=\"history-cell\" data-label=\"History\"><div class=\"history\">"),
        "{broken}"
    );
    assert_eq!(broken.matches("<li class=\"sev-").count(), 3, "{broken}");
    assert!(
        broken.contains("<span class=\"sev-critical\">2 undecryptable</span> · <span class=\"sev-ok\">1 ok</span>"),
        "{broken}"
    );
    assert!(broken.contains("<svg class=\"spark\""), "{broken}");
    let healthy = row_html(&html, "healthy");
    assert_eq!(
        healthy.matches("<li class=\"sev-ok\"").count(),
        1,
        "{healthy}"
    );
    // A destination waiting for its first probe has no history cell of its own.
    let waiting = row_html(&html, "new");
    assert!(!waiting.contains("history"), "{waiting}");
    assert!(waiting.contains("colspan=\"6\""), "{waiting}");
}

/// The memory figures docs/performance.md states for the history (run by hand and alone,
/// as other tests in the same process move the RSS:
/// `cargo test --release --bin replicanary history_memory -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check: prints figures"]
fn history_memory_at_1000_destinations() {
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
    println!(
        "size_of Row {} B, History {} B, Mark {} B",
        std::mem::size_of::<Row>(),
        std::mem::size_of::<super::History>(),
        std::mem::size_of::<super::history::Mark>()
    );
    let before = rss_kib();
    let b = Board::new();
    for i in 0..1000 {
        b.record(&ok(&format!("replication-{i:04}"), "dst", 0));
    }
    let one = rss_kib();
    for s in 1..100 {
        for i in 0..1000 {
            b.record(&ok(&format!("replication-{i:04}"), "dst", s));
        }
    }
    let hundred = rss_kib();
    let grown = hundred.saturating_sub(one);
    println!(
        "RSS: +{} KiB for 1,000 rows after 1 verdict each, +{grown} KiB more after 99 more each",
        one - before,
    );
    // A history that grew with its verdicts would add 99 × 1,000 marks (≥ 1.1 MiB) here.
    assert!(grown < 512, "RSS grew by {grown} KiB with the verdicts");
    let started = std::time::Instant::now();
    let rows = b.snapshot();
    println!("snapshot of 1,000 rows: {:?}", started.elapsed());
    // The same rows with their histories emptied: what the page costs without them.
    let mut bare = rows.clone();
    for r in &mut bare {
        r.history = super::History::default();
    }
    // Each render twice, the second timed (the first pays for fresh memory).
    let timed = |rows: &[Row]| {
        let _ = page::render(rows, &header(), at(200));
        let started = std::time::Instant::now();
        let page = page::render(rows, &header(), at(200));
        (page, started.elapsed())
    };
    let (without, t_without) = timed(&bare);
    let (page, t_with) = timed(&rows);
    println!(
        "render of 1,000 rows: {t_without:?} without the histories ({} bytes), {t_with:?} with",
        without.len()
    );
    let empty = page::render(&[], &header(), at(200));
    println!(
        "page: {} bytes for 1,000 rows with 30 marks each ({} per row)",
        page.len(),
        (page.len() - empty.len()) / 1000
    );
    let one_row = page::render(&rows[..1], &header(), at(200));
    let cell_start = one_row.find("<td class=\"history-cell\"").unwrap_or(0);
    let cell_end = one_row[cell_start..].find("</td>").unwrap_or(0);
    println!("history cell: {} bytes", cell_end);
    // What a browser receives: `/` is sent gzipped at level 1, like /metrics.
    let started = std::time::Instant::now();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    std::io::Write::write_all(&mut gz, page.as_bytes()).expect("in memory");
    let gz = gz.finish().expect("in memory");
    println!(
        "page gzipped (level 1): {} bytes ({:.1}x smaller) in {:?}",
        gz.len(),
        page.len() as f64 / gz.len() as f64,
        started.elapsed()
    );
}

#[test]
fn a_cannot_inspect_finding_links_to_its_runbook_section() {
    // The runbook's heading `### Finding `cannot_inspect:GetBucketReplication`` is the
    // anchor `finding-cannot_inspectgetbucketreplication` (lower case, `:` dropped), as the
    // alert rules link to it; the label itself, with its colon and capitals, is no anchor.
    let b = Board::new();
    b.register_destination("r", "d");
    let mut v = verdict("r", "d", Outcome::Error, 10);
    v.findings = Some(vec![Finding {
        id: FindingId::CannotInspectGetBucketReplication,
        explanation: "why".into(),
        fix: "fix".into(),
    }]);
    b.record(&v);
    let html = page::render(&b.snapshot(), &header(), at(20));
    assert!(
        html.contains(&format!(
            "href=\"{RUNBOOK_URL}#finding-cannot_inspectgetbucketreplication\">cannot_inspect:GetBucketReplication</a>"
        )),
        "{html}"
    );
}
