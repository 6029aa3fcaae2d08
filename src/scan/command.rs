//! `replicanary scan` over the AWS SDK: the clients of each side, the manifests, the
//! progress on stderr, Ctrl-C. The replications are scanned one after the other, within
//! one rate.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::manifest::Manifest;
use super::render::ScanReport;
use super::{Budget, Options, Target, scan_replication};
use crate::aws::clients::acting_for;
use crate::config::{AwsSettings, Config};
use crate::estate::Estate;
use crate::metrics::Metrics;
use crate::model::Side;

/// A progress line this often when stderr is not a terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// A manifest that could not be written: the scan stops.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot write a manifest in {}: {error}", dir.display())]
    Create { dir: PathBuf, error: std::io::Error },
    /// Its last rows could not be written out.
    #[error(transparent)]
    Finish(std::io::Error),
}

/// Scans every replication of `config` (already narrowed to the selected ones).
pub async fn scan_all(
    config: &Config,
    opts: &Options,
    rate: u32,
    manifest_dir: Option<&Path>,
    stop: &CancellationToken,
) -> Result<ScanReport, ManifestError> {
    let started = Instant::now();
    // One attempt per SDK call: every retry goes through the scan's own budget, so that
    // retries after throttling wait for the rate too, and `requests` counts them all.
    let aws = AwsSettings {
        max_attempts: 1,
        ..config.aws.clone()
    };
    let estate = Estate::new(&aws, Arc::new(Metrics::new())).await;
    let clients = estate.clients();
    let budget = Budget::new(rate);
    let mut replications = Vec::new();
    for rep in &config.replications {
        if stop.is_cancelled() {
            break;
        }
        let s = &rep.source;
        let source = clients
            .store(&rep.name, Side::Source, &s.region, s.role.as_ref())
            .await;
        let mut stores = Vec::new();
        let mut manifests = Vec::new();
        for d in &rep.destinations {
            stores.push(
                clients
                    .store(&rep.name, Side::Destination, &d.region, d.role.as_ref())
                    .await,
            );
            manifests.push(match manifest_dir {
                Some(dir) => Some(Manifest::create(dir, &rep.name, &d.name).map_err(|error| {
                    ManifestError::Create {
                        dir: dir.to_owned(),
                        error,
                    }
                })?),
                None => None,
            });
        }
        let mut targets: Vec<Target<'_, _>> = stores
            .iter()
            .zip(manifests.iter_mut())
            .map(|(reader, m)| Target {
                reader,
                manifest: m.as_mut(),
            })
            .collect();
        let done = AtomicU64::new(0);
        let work = scan_replication(rep, &source, &mut targets, opts, &budget, &done, stop);
        let result = {
            let progress = Progress::start(&rep.name, &done, &budget);
            let work = acting_for(&rep.name, work);
            tokio::pin!(work);
            let mut tick = tokio::time::interval(progress.every());
            tick.tick().await;
            loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = tick.tick() => progress.line(&rep.name, &done, &budget),
                }
            }
        };
        drop(targets);
        for m in manifests.into_iter().flatten() {
            let (path, rows) = m.finish().map_err(ManifestError::Finish)?;
            eprintln!("manifest: {} ({rows} rows)", path.display());
        }
        replications.push(result);
    }
    Ok(ScanReport {
        replications,
        requests: budget.requests(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A bar on a terminal; otherwise a line every [`PROGRESS_EVERY`].
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    fn start(name: &str, done: &AtomicU64, budget: &Budget) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {pos} objects ({per_sec}) {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let p = Progress {
            bar,
            started: Instant::now(),
        };
        p.update(done, budget);
        p
    }

    /// How often the bar is refreshed, or a line printed.
    fn every(&self) -> Duration {
        if self.bar.is_some() {
            Duration::from_millis(250)
        } else {
            PROGRESS_EVERY
        }
    }

    fn update(&self, done: &AtomicU64, budget: &Budget) {
        if let Some(bar) = &self.bar {
            bar.set_position(done.load(Ordering::Relaxed));
            bar.set_message(format!("{} requests", budget.requests()));
        }
    }

    /// Called every [`PROGRESS_EVERY`]: the bar is refreshed, or a line printed.
    fn line(&self, name: &str, done: &AtomicU64, budget: &Budget) {
        if self.bar.is_some() {
            self.update(done, budget);
            return;
        }
        let n = done.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!(
            "scan {name}: {n} objects in {secs:.0}s ({:.0}/s), {} requests",
            n as f64 / secs.max(0.001),
            budget.requests()
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
