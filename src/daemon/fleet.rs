//! The reconciler: the one place that turns "these replications should run" into running
//! tasks, at start-up and on every reload.
//!
//! [`plan`] diffs the desired replications against the running ones by name:
//! - **kept** — equal settings, source and destinations: the task goes on untouched, with
//!   its schedule, its ledger of pending deletes and its series;
//! - **changed** — same name, anything else different: the old task stops after its probe
//!   in flight, then a new one starts; the series stay (same name), except those of
//!   destinations the replication no longer has;
//! - **removed** — its probe in flight finishes (cancelled after the grace period), its
//!   canaries are deleted, then its series leave `/metrics`;
//! - **added** — a new task, its first probe staggered over its interval.
//!
//! A task that replaces another of the same name (changed, or removed then added back)
//! waits until the old one has finished, so one replication never probes twice at once
//! and a removal's series never outlive the replacement's registration.
//! [`Fleet::reconcile`] only spawns and signals; it never waits for a probe.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::scan::{Scanner, build_scanner};
use super::task::{SWEEPS_AT_ONCE, Stops, replication_loop};
use crate::aws::clients::acting_for;
use crate::aws::s3::S3Store;
use crate::aws::{ObjectStore, SetupReader};
use crate::config::{AwsSettings, Replication};
use crate::emit::Sinks;
use crate::estate::{Current, Estate};
use crate::probe::Prober;

/// Builds the prober of a replication: over the SDK in the daemon, in memory in tests.
pub trait MakeProber: Sized + Send + Sync + 'static {
    type Store: ObjectStore + SetupReader + 'static;

    fn make(&self, rep: &Replication) -> impl Future<Output = Prober<Self::Store>> + Send;

    /// A maker for other AWS settings (a reload changed `aws:`).
    fn remake(&self, aws: &AwsSettings) -> impl Future<Output = Self> + Send;

    /// The background scan of a replication with `scan:` set; none by default (the
    /// in-memory makers of the tests).
    fn make_scanner(&self, _rep: &Replication) -> impl Future<Output = Option<Scanner>> + Send {
        async { None }
    }
}

/// Probers over the AWS SDK, their clients from the estate in force (shared with
/// discovery).
pub struct SdkProbers {
    estates: Arc<Current>,
    estate: Estate,
    sinks: Sinks,
}

impl SdkProbers {
    pub async fn new(estates: Arc<Current>, aws: &AwsSettings, sinks: Sinks) -> SdkProbers {
        SdkProbers {
            estate: estates.estate(aws).await,
            estates,
            sinks,
        }
    }
}

impl MakeProber for SdkProbers {
    type Store = S3Store;

    async fn make(&self, rep: &Replication) -> Prober<S3Store> {
        let prober = self.estate.prober(rep, &self.sinks).await;
        tracing::debug!(
            replication = %rep.name,
            aws_clients = self.estate.clients().len(),
            "prober built; S3 clients are shared by the replications"
        );
        prober
    }

    async fn remake(&self, aws: &AwsSettings) -> SdkProbers {
        SdkProbers::new(self.estates.clone(), aws, self.sinks.clone()).await
    }

    async fn make_scanner(&self, rep: &Replication) -> Option<Scanner> {
        build_scanner(rep, self.estate.clients(), &self.sinks).await
    }
}

/// What a reconcile has to do, by name.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Running and unchanged.
    pub keep: Vec<String>,
    /// Running with other settings: stop, then start again.
    pub restart: Vec<Replication>,
    /// Running and no longer desired.
    pub stop: Vec<String>,
    /// Desired and not running.
    pub start: Vec<Replication>,
}

/// Diffs the desired replications against the running ones. `all_changed`: every running
/// one counts as changed (the clients they were built with are gone). A name desired twice
/// keeps its first entry.
pub fn plan<'a>(
    running: impl IntoIterator<Item = &'a Replication>,
    desired: Vec<Replication>,
    all_changed: bool,
) -> Plan {
    let running: BTreeMap<&str, &Replication> =
        running.into_iter().map(|r| (r.name.as_str(), r)).collect();
    let mut seen = BTreeSet::new();
    let mut p = Plan::default();
    for rep in desired {
        if !seen.insert(rep.name.clone()) {
            continue;
        }
        match running.get(rep.name.as_str()) {
            None => p.start.push(rep),
            Some(now) if !all_changed && **now == rep => p.keep.push(rep.name),
            Some(_) => p.restart.push(rep),
        }
    }
    p.stop = running
        .keys()
        .filter(|n| !seen.contains(**n))
        .map(|n| (*n).to_owned())
        .collect();
    p
}

/// What a reconcile did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub started: usize,
    pub restarted: usize,
    pub stopped: usize,
    pub unchanged: usize,
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} started, {} restarted, {} stopped, {} unchanged",
            self.started, self.restarted, self.stopped, self.unchanged
        )
    }
}

/// One replication's running task.
struct Running {
    replication: Replication,
    stops: Stops,
    /// Cancelled once the task has ended: probe finished, deletes tried, series settled.
    done: CancellationToken,
    /// Set before `stop` when the replication was removed: its series go when it ends.
    removed: Arc<AtomicBool>,
}

/// The running replications and their tasks.
pub struct Fleet<M: MakeProber> {
    maker: Arc<M>,
    aws: AwsSettings,
    sinks: Sinks,
    /// How long a stopped replication's probe in flight may go on before it is cancelled.
    grace: Duration,
    running: BTreeMap<String, Running>,
    /// `done` of stopped tasks that may still be finishing, by name.
    retiring: HashMap<String, CancellationToken>,
    tasks: JoinSet<()>,
    /// Shutdown: every task's `stop` and `abort` are children of these.
    all: Stops,
    /// The permits of the sweeps, shared by every task (reloads included).
    sweeps: Arc<Semaphore>,
}

impl<M: MakeProber> Fleet<M> {
    pub fn new(maker: M, aws: &AwsSettings, sinks: Sinks, grace: Duration) -> Fleet<M> {
        Fleet {
            maker: Arc::new(maker),
            aws: aws.clone(),
            sinks,
            grace,
            running: BTreeMap::new(),
            retiring: HashMap::new(),
            tasks: JoinSet::new(),
            all: Stops {
                stop: CancellationToken::new(),
                abort: CancellationToken::new(),
            },
            sweeps: Arc::new(Semaphore::new(SWEEPS_AT_ONCE)),
        }
    }

    /// Another bound on the sweeps running at once.
    /// The names of the running replications, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.running.keys().map(String::as_str)
    }

    /// The task that runs `name` (a kept replication keeps its task).
    /// Makes the running replications the desired ones: see the module documentation.
    /// `aws`: the desired AWS settings; when they differ, every replication is restarted
    /// on new clients.
    pub async fn reconcile(&mut self, desired: Vec<Replication>, aws: &AwsSettings) -> Changes {
        self.reap();
        let aws_changed = *aws != self.aws;
        if aws_changed {
            tracing::info!("the aws settings changed: every replication restarts on new clients");
            self.maker = Arc::new(self.maker.remake(aws).await);
            self.aws = aws.clone();
        }
        let first = self.running.is_empty();
        let p = plan(
            self.running.values().map(|r| &r.replication),
            desired,
            aws_changed,
        );
        let changes = Changes {
            started: p.start.len(),
            restarted: p.restart.len(),
            stopped: p.stop.len(),
            unchanged: p.keep.len(),
        };
        for name in &p.stop {
            self.retire(name, true);
            tracing::info!(replication = %name, "replication stopped: no longer configured; its canaries are deleted and its series removed");
        }
        // Starts (new and restarted) are spread evenly over their intervals, in order.
        let starting = p.restart.len() + p.start.len();
        let restarts = p.restart.into_iter().map(|r| (r, true));
        let starts = p.start.into_iter().map(|r| (r, false));
        for (i, (rep, restarted)) in restarts.chain(starts).enumerate() {
            let offset = rep.settings.interval.mul_f64(i as f64 / starting as f64);
            let mut dropped = Vec::new();
            if restarted && let Some(old) = self.retire(&rep.name, false) {
                dropped = old
                    .destinations
                    .iter()
                    .filter(|d| !rep.destinations.iter().any(|n| n.name == d.name))
                    .map(|d| d.name.clone())
                    .collect();
            }
            if !first {
                tracing::info!(
                    replication = %rep.name,
                    interval_seconds = rep.settings.interval.as_secs_f64(),
                    first_probe_in_seconds = offset.as_secs_f64(),
                    "{}",
                    if restarted { "replication restarted: its settings changed" } else { "replication started" }
                );
            }
            self.launch(rep, offset, dropped);
        }
        changes
    }

    /// Tells a running replication to stop; returns what it was running.
    fn retire(&mut self, name: &str, removed: bool) -> Option<Replication> {
        let r = self.running.remove(name)?;
        r.removed.store(removed, Ordering::SeqCst);
        r.stops.stop.cancel();
        // Its probe in flight may finish within the grace period, then it is cancelled.
        let (done, abort, grace) = (r.done.clone(), r.stops.abort.clone(), self.grace);
        tokio::spawn(async move {
            tokio::select! {
                () = done.cancelled() => {}
                () = tokio::time::sleep(grace) => {
                    tracing::warn!("grace period over: cancelling a stopped replication's probe in flight");
                    abort.cancel();
                }
            }
        });
        self.retiring.insert(name.to_owned(), r.done);
        Some(r.replication)
    }

    /// Starts a replication's task, after the previous task of that name (if any) ended.
    fn launch(&mut self, rep: Replication, offset: Duration, dropped: Vec<String>) {
        let previous = self.retiring.remove(&rep.name);
        let stops = Stops {
            stop: self.all.stop.child_token(),
            abort: self.all.abort.child_token(),
        };
        let done = CancellationToken::new();
        let removed = Arc::new(AtomicBool::new(false));
        let task = {
            let (maker, sinks, rep) = (self.maker.clone(), self.sinks.clone(), rep.clone());
            let sweeps = self.sweeps.clone();
            let (stops, done, removed) = (stops.clone(), done.clone(), removed.clone());
            acting_for(&rep.name.clone(), async move {
                let _done = done.drop_guard();
                if let Some(previous) = previous {
                    previous.cancelled().await;
                }
                if !stops.stop.is_cancelled() {
                    for d in &dropped {
                        sinks.remove_destination(&rep.name, d);
                    }
                    let prober = Box::pin(maker.make(&rep)).await;
                    let metrics = sinks.metrics.clone();
                    let scanner = Box::pin(maker.make_scanner(&rep)).await;
                    let probes = replication_loop(prober, offset, metrics, sweeps, stops.clone());
                    match scanner {
                        // The scan runs beside the probes, and ends with them.
                        Some(scanner) => {
                            let scans = Box::pin(scanner.run(stops.stop.clone()));
                            tokio::join!(probes, scans);
                        }
                        None => probes.await,
                    }
                }
                if removed.load(Ordering::SeqCst) {
                    sinks.remove_replication(&rep.name);
                }
            })
        };
        self.tasks.spawn(task);
        let running = Running {
            replication: rep,
            stops,
            done,
            removed,
        };
        self.running
            .insert(running.replication.name.clone(), running);
    }

    /// Forgets tasks that have ended; a panicked one is logged.
    fn reap(&mut self) {
        while let Some(ended) = self.tasks.try_join_next() {
            if let Err(e) = ended
                && e.is_panic()
            {
                tracing::error!(error = %e, "a replication's task panicked");
            }
        }
        self.retiring.retain(|_, done| !done.is_cancelled());
    }

    /// Shutdown: no new probes; probes in flight may finish for the grace period, then are
    /// cancelled; canaries are cleaned up either way. Series stay (the process ends).
    pub async fn shutdown(mut self) {
        self.all.stop.cancel();
        let tasks = &mut self.tasks;
        let drained = tokio::time::timeout(self.grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "grace period over: cancelling in-flight probes and cleaning up their canaries"
            );
            self.all.abort.cancel();
            // Cleanup after cancellation is a few deletes; bound it all the same.
            let _ = tokio::time::timeout(Duration::from_secs(30), async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests;
