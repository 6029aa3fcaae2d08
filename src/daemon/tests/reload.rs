//! The reload loop: merged sources, unchanged content, invalid files, one reload at a time,
//! the discovery hook and the shard filter.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::fake::{Fake, TempFile, reps, yaml};
use crate::config::Config;
use crate::daemon::fleet::{Fleet, MakeProber};
use crate::daemon::reload::{Reloader, merge, serve};
use crate::daemon::shard::Shard;
use crate::daemon::triggers::{Cause, Trigger};
use crate::http::ReloadRequest;
use crate::metrics::Metrics;

/// A reloader started on `text`, written to a temporary file.
async fn started(text: &str, shard: Shard) -> (Reloader<Fake>, TempFile, Fake) {
    let file = TempFile::new("replicanary.yaml", text);
    let metrics = Arc::new(Metrics::new());
    let fake = Fake::new(&metrics);
    let config = Config::parse(text).expect("valid");
    let fleet = Fleet::new(
        fake.clone(),
        &config.aws,
        fake.sinks.clone(),
        Duration::from_secs(5),
    );
    let r = Reloader::start(
        file.path.clone(),
        text,
        config,
        shard,
        fleet,
        fake.sinks.clone(),
    )
    .await;
    (r, file, fake)
}

fn running_names<M: MakeProber>(r: &Reloader<M>) -> Vec<&str> {
    r.fleet.names().collect()
}

fn reload_gauge(m: &Metrics) -> String {
    m.encode()
        .lines()
        .find(|l| l.starts_with("replicanary_config_last_reload_successful "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn an_explicit_replication_wins_over_a_discovered_one_for_the_same_rule() {
    let explicit = reps(&[("audit-logs", "1m", 1), ("other", "1m", 1)]);
    let mut same_rule = reps(&[("discovered", "5m", 1)]).remove(0);
    same_rule.name = "src-audit-logs/rule-1".to_owned();
    same_rule.source.bucket = "src-audit-logs".to_owned();
    same_rule.destinations[0].bucket = "dst-audit-logs-0".to_owned();
    let same_name = reps(&[("other", "5m", 1)]).remove(0);
    let mut new = reps(&[("bucket", "5m", 1)]).remove(0);
    new.name = "bucket/rule".to_owned();
    let merged = merge(&explicit, &[same_rule, same_name, new]);
    let names: Vec<&str> = merged.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["audit-logs", "other", "bucket/rule"]);
    assert_eq!(
        merged[1].settings.interval,
        Duration::from_secs(60),
        "explicit `other`"
    );
}

#[tokio::test]
async fn a_reload_applies_a_changed_file_and_ignores_the_same_content() {
    let (mut r, file, fake) = started(&yaml(&[("a", "1m", 1), ("b", "1m", 1)]), Shard::ALL).await;
    super::fake::wait_for("both built", || {
        fake.builds("a").len() == 1 && fake.builds("b").len() == 1
    })
    .await;
    assert_eq!(
        r.reload_file(Cause::Signal).await,
        Ok("configuration unchanged".to_owned())
    );
    file.write(&yaml(&[("a", "1m", 1), ("b", "2m", 1), ("c", "1m", 1)]));
    assert_eq!(
        r.reload_file(Cause::Http).await,
        Ok("configuration reloaded: 1 started, 1 restarted, 0 stopped, 1 unchanged".to_owned())
    );
    assert_eq!(
        r.reload_file(Cause::FileChanged).await,
        Ok("configuration unchanged".to_owned())
    );
    super::fake::wait_for("b rebuilt", || fake.builds("b").len() == 2).await;
    assert_eq!(fake.builds("a").len(), 1);
    r.into_fleet().shutdown().await;
}

#[tokio::test]
async fn an_invalid_file_keeps_the_running_configuration_and_names_every_error() {
    let good = yaml(&[("a", "1m", 1), ("b", "1m", 1)]);
    let (mut r, file, fake) = started(&good, Shard::ALL).await;
    let metrics = fake.metrics.clone();
    let bad = good
        .replacen("interval: 1m", "interval: 5 parsecs", 1)
        .replace("key/1111aaaa", "alias/1111aaaa");
    file.write(&bad);
    for cause in [Cause::Signal, Cause::FileChanged] {
        let refused = r.reload_file(cause).await.expect_err("invalid");
        let errors = refused.lines();
        assert!(
            errors
                .iter()
                .any(|e| e.contains(": replications[0].interval: ")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("replications[1].destinations[0].expected_kms_key_arn")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .all(|e| e.starts_with(&*file.path.to_string_lossy()))
        );
        assert_eq!(
            reload_gauge(&metrics),
            "replicanary_config_last_reload_successful 0"
        );
    }
    let running: Vec<&str> = running_names(&r);
    assert_eq!(running, ["a", "b"]);
    // Fixed: applied, and the gauge says so.
    file.write(&yaml(&[("a", "1m", 1)]));
    assert!(r.reload_file(Cause::FileChanged).await.is_ok());
    assert_eq!(
        reload_gauge(&metrics),
        "replicanary_config_last_reload_successful 1"
    );
    assert_eq!(running_names(&r), ["a"]);
    // An unreadable file is an error too.
    std::fs::remove_file(&file.path).expect("remove");
    let refused = r.reload_file(Cause::Signal).await.expect_err("unreadable");
    let errors = refused.lines();
    assert!(errors[0].contains("cannot read the file"), "{errors:?}");
    assert_eq!(running_names(&r), ["a"]);
    r.into_fleet().shutdown().await;
}

#[tokio::test]
async fn triggers_are_applied_one_at_a_time_and_discovery_plugs_in() {
    let (r, file, _) = started(&yaml(&[("a", "1m", 1)]), Shard::ALL).await;
    let (triggers, trigger_queue) = mpsc::channel(16);
    let (http, http_queue) = mpsc::channel(16);
    let stop = CancellationToken::new();
    let serving = tokio::spawn(serve(r, trigger_queue, http_queue, stop.clone()));
    file.write(&yaml(&[("a", "1m", 1), ("b", "1m", 1)]));
    // Five requests at once: the first reloads, the others find the content it applied.
    let mut answers = Vec::new();
    for _ in 0..5 {
        let (reply, answer) = oneshot::channel();
        http.send(ReloadRequest { reply }).await.expect("queued");
        answers.push(answer);
    }
    let mut texts = Vec::new();
    for a in answers {
        texts.push(a.await.expect("answered").expect("valid"));
    }
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.starts_with("configuration reloaded"))
            .count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| *t == "configuration unchanged")
            .count(),
        4
    );
    // Discovery: its replications join the explicit ones, by the same loop.
    let mut found = reps(&[("x", "5m", 1), ("a", "5m", 1)]);
    found[0].name = "x/rule".to_owned();
    triggers
        .send(Trigger::Discovered(found))
        .await
        .expect("queued");
    triggers
        .send(Trigger::Reload(Cause::Signal))
        .await
        .expect("queued");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel();
    let r = serving.await.expect("the loop ends");
    assert_eq!(running_names(&r), ["a", "b", "x/rule"]);
    r.into_fleet().shutdown().await;
}

#[tokio::test]
async fn each_shard_runs_its_share_and_together_they_run_everything() {
    let names: Vec<String> = (0..20).map(|i| format!("rep-{i}")).collect();
    let spec: Vec<(&str, &str, usize)> = names.iter().map(|n| (n.as_str(), "1m", 1)).collect();
    let text = yaml(&spec);
    let mut seen = Vec::new();
    for index in 0..2 {
        let shard = Shard::new(index, 2).expect("valid");
        let (r, _file, _) = started(&text, shard).await;
        let mine: Vec<String> = running_names(&r).iter().map(|s| (*s).to_owned()).collect();
        assert!(
            !mine.is_empty() && mine.len() < names.len(),
            "shard {index}: {mine:?}"
        );
        assert!(mine.iter().all(|n| shard.owns(n)));
        seen.extend(mine);
        r.into_fleet().shutdown().await;
    }
    seen.sort();
    let mut all = names.clone();
    all.sort();
    assert_eq!(seen, all, "every replication on exactly one shard");
}
