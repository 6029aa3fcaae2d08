//! `check` and `audit`: what `run` would probe (the configured replications and, with
//! `discovery:`, what one pass finds), once, over one [`Estate`]; a report on stdout.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Ending, Error, load, runtime, select};
use crate::aws::clients::acting_for;
use crate::aws::s3::S3Store;
use crate::config::{self, Config};
use crate::daemon::Monitor;
use crate::discovery::{self, Hints};
use crate::emit::Sinks;
use crate::estate::Estate;
use crate::logging::{self, LogFormat};
use crate::metrics::Metrics;
use crate::probe::Prober;
use crate::report::{AuditEntry, Report, ReportFormat};

/// What `check` and `audit` look at, and how they say it.
pub struct Request {
    pub config: PathBuf,
    /// Only these replications (all if none).
    pub replications: Vec<String>,
    pub format: ReportFormat,
}

/// Probes each replication once: clean when every verdict is ok.
pub fn check(req: Request) -> Result<Ending, Error> {
    once(req, |estate, config| async move {
        let never = CancellationToken::new();
        on_every_prober(&estate, &config, move |prober| {
            let never = never.clone();
            async move {
                let mut monitor = Monitor::new(prober);
                monitor.probe(&never).await.given().unwrap_or_default()
            }
        })
        .await
    })
}

/// Reads each replication's setup (no canary): clean when there are no findings.
pub fn audit(req: Request) -> Result<Ending, Error> {
    once(req, |estate, config| async move {
        on_every_prober(&estate, &config, |prober| async move {
            let replication = prober.replication.name.clone();
            Monitor::new(prober)
                .audit()
                .await
                .into_iter()
                .map(|(destination, findings)| AuditEntry {
                    replication: replication.clone(),
                    destination,
                    findings,
                })
                .collect()
        })
        .await
    })
}

/// Runs `job` once over the selected replications, prints the report; clean when it is,
/// nothing crashed and discovery read everything.
fn once<T, F, Fut>(req: Request, job: F) -> Result<Ending, Error>
where
    T: Report,
    F: FnOnce(Estate, Config) -> Fut,
    Fut: Future<Output = Done<T>>,
{
    let config = load(&req.config)?;
    logging::init(LogFormat::Text, "error");
    let rt = runtime()?;
    // One pool and one registry for discovery's pass and the probes.
    let estate = rt.block_on(Estate::new(&config.aws, Arc::new(Metrics::new())));
    let (config, discovery_errors) = rt.block_on(with_discovered(&estate, config));
    let config = select(config, &req.config, &req.replications)?;
    let done = rt.block_on(job(estate, config));
    print!("{}", T::render(&done.results, req.format));
    if done.crashed > 0 {
        eprintln!(
            "replicanary: {} replication(s) could not be checked: their task panicked",
            done.crashed
        );
    }
    let clean = done.crashed == 0 && discovery_errors == 0 && T::clean(&done.results);
    Ok(Ending::clean_if(clean))
}

/// The configured replications plus, with `discovery:`, what one pass finds (a configured
/// replication wins over a discovered one for the same rule). Also returns how many
/// buckets or rules discovery could not read (each named on stderr).
async fn with_discovered(estate: &Estate, mut config: Config) -> (Config, usize) {
    let Some(mut d) = config.discovery.clone() else {
        return (config, 0);
    };
    // What to probe is all they need: the rules nobody monitors are `discover`'s and `run`'s.
    d.coverage = false;
    let prefix = &config.defaults.canary_prefix;
    let pass = estate
        .discover(&d, prefix, &Hints::default(), &|_| {})
        .await;
    let found: Vec<config::Replication> = pass
        .found()
        .map(|f| f.replication(&config.defaults))
        .collect();
    let errors: Vec<&discovery::Skip> = pass.skips().filter(|s| s.reason.is_error()).collect();
    for s in &errors {
        let rule = s
            .rule_id
            .as_deref()
            .map_or(String::new(), |r| format!("/{r}"));
        eprintln!(
            "discovery: {}{rule} ({} {}): {} — {}",
            s.bucket, s.source_account, s.region, s.reason, s.detail
        );
    }
    eprintln!(
        "discovery: {} replications found, {} buckets or rules skipped ({} could not be read; `replicanary discover` lists them all)",
        found.len(),
        pass.skips().count(),
        errors.len()
    );
    let errors = errors.len();
    config.replications = discovery::merge(&config.replications, &found);
    (config, errors)
}

/// What a one-shot command gathered: results in configuration order, and how many
/// replications' tasks panicked instead of giving one.
struct Done<T> {
    results: Vec<T>,
    crashed: usize,
}

/// Runs `job` on every replication's prober concurrently.
async fn on_every_prober<T, Fut>(
    estate: &Estate,
    config: &Config,
    job: impl Fn(Prober<S3Store>) -> Fut,
) -> Done<T>
where
    T: Send + 'static,
    Fut: Future<Output = Vec<T>> + Send + 'static,
{
    // One-shot commands report verdicts themselves: their board is never shown.
    let sinks = Sinks::new(estate.metrics().clone(), Arc::default());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, rep) in config.replications.iter().enumerate() {
        let prober = estate.prober(rep, &sinks).await;
        let work = acting_for(&rep.name, job(prober));
        tasks.spawn(async move { (i, work.await) });
    }
    let mut results = Vec::new();
    let mut crashed = 0;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(r) => results.push(r),
            Err(_) => crashed += 1,
        }
    }
    results.sort_by_key(|(i, _)| *i);
    Done {
        results: results.into_iter().flat_map(|(_, v)| v).collect(),
        crashed,
    }
}
