//! A replication's task: its future stays small, because the probe's, the sweep's and the
//! final deletes' futures are boxed (they live on the heap only while they run).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::fake::Fake;
use crate::config::Config;
use crate::daemon::fleet::MakeProber;
use crate::daemon::task::{Monitor, Stops, replication_loop};
use crate::metrics::Metrics;

#[tokio::test]
async fn a_task_future_does_not_hold_a_probe_round() {
    let config = Config::parse(
        "replications:\n  - name: r\n    source: {bucket: src-bucket, region: ap-northeast-1}\n    destinations:\n      - {name: d, bucket: dst-bucket, region: ap-northeast-1, expected_kms_key_arn: 'arn:aws:kms:ap-northeast-1:222222222222:key/1111aaaa-12ab-34cd-56ef-1234567890ab'}\n",
    )
    .expect("valid");
    let rep = &config.replications[0];
    let fake = Fake::new(&Arc::new(Metrics::new()));
    let never = CancellationToken::new();
    let mut monitor = Monitor::new(fake.make(rep).await);
    let round = std::mem::size_of_val(&monitor.probe(&never));
    let stops = Stops {
        stop: never.clone(),
        abort: never.clone(),
    };
    let task = replication_loop(
        fake.make(rep).await,
        Duration::ZERO,
        Arc::new(Metrics::new()),
        Arc::new(Semaphore::new(1)),
        stops,
    );
    let task = std::mem::size_of_val(&task);
    assert!(
        task < round,
        "a task's future ({task} B) embeds a probe round's ({round} B): box it"
    );
}
