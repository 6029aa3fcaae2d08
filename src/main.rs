//! replicanary: proves, all day long, that S3 cross-account replication of SSE-KMS
//! objects works and that the destination account can read what arrives.
//!
//! This file is the command line only; see ARCHITECTURE.md for the map.

mod aws;
mod canary;
mod cleanup;
mod config;
mod daemon;
mod diagnose;
mod emit;
mod http;
mod logging;
mod metrics;
mod model;
mod probe;
mod report;
#[cfg(test)]
mod testing;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use aws::clients::{Clients, acting_for};
use aws::s3::S3Store;
use config::Config;
use logging::LogFormat;
use probe::Prober;
use report::{AuditEntry, Report, ReportFormat};

#[derive(Parser)]
#[command(
    version,
    about = "Canary probes for S3 cross-account replication of SSE-KMS objects"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ConfigFile {
    /// The configuration file (YAML).
    #[arg(long, env = "REPLICANARY_CONFIG", value_name = "FILE")]
    config: PathBuf,
}

/// What `check` and `audit` look at, and how they say it.
#[derive(Args)]
struct Selection {
    #[command(flatten)]
    file: ConfigFile,
    /// Only this replication (repeatable).
    #[arg(long = "replication", value_name = "NAME")]
    replications: Vec<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: probe every replication on its interval and serve /metrics.
    Run {
        #[command(flatten)]
        file: ConfigFile,
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, default_value = "127.0.0.1:9879", value_name = "ADDR")]
        listen: SocketAddr,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// On SIGTERM/SIGINT, how long in-flight probes may finish before they are cancelled.
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        grace_period: Duration,
    },
    /// Probe each (or each named) replication once, print a report, exit 0 if all are ok.
    Check(Selection),
    /// Read-only inspection of each replication's setup (no canary): exit 0 when there are no findings.
    Audit(Selection),
    /// Parse and validate the configuration without calling AWS.
    Validate(ConfigFile),
}

/// Exit code for usage and configuration errors.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("replicanary: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(file) => {
            let c = match load(&file.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let dests: usize = c.replications.iter().map(|r| r.destinations.len()).sum();
            println!(
                "{}: ok ({} replications, {dests} destinations)",
                file.config.display(),
                c.replications.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            listen,
            log_format,
            grace_period,
        } => {
            let c = match load(&file.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            logging::init(log_format, "info,aws_config=warn,aws_smithy_runtime=warn");
            runtime()?.block_on(daemon::run(c, listen, grace_period))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(sel) => once(sel, |config| async move {
            let never = tokio_util::sync::CancellationToken::new();
            on_every_prober(&config, move |mut prober| {
                let never = never.clone();
                async move { prober.probe(&never).await.unwrap_or_default() }
            })
            .await
        }),
        Command::Audit(sel) => once(sel, |config| async move {
            on_every_prober(&config, |mut prober| async move {
                let replication = prober.replication.name.clone();
                prober
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
        }),
    }
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(USAGE)
    })
}

/// One thread runs every probe: a probe is almost all waiting, and at 1,000 replications
/// the daemon uses ~5 % of a core. Measured against two workers (docs/performance.md,
/// "Runtime and allocator"): 6–11 % less CPU per probe, a third less system time, two
/// threads instead of four. /metrics is encoded on tokio's blocking pool all the same.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `check` and `audit`: run `job` once over the selected replications, print the report,
/// exit 0 when it is clean, 1 otherwise, 2 for configuration errors.
fn once<T, F, Fut>(sel: Selection, job: F) -> anyhow::Result<ExitCode>
where
    T: Report,
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = Done<T>>,
{
    let config = match load_selected(&sel.file.config, &sel.replications) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    logging::init(LogFormat::Text, "error");
    let done = runtime()?.block_on(job(config));
    print!("{}", T::render(&done.results, sel.format));
    if done.crashed > 0 {
        eprintln!(
            "replicanary: {} replication(s) could not be checked: their task panicked",
            done.crashed
        );
    }
    let clean = done.crashed == 0 && T::clean(&done.results);
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Loads the configuration, keeping only the named replications (all if none named).
fn load_selected(path: &Path, names: &[String]) -> Result<Config, ExitCode> {
    let mut c = load(path)?;
    if let Some(unknown) = names
        .iter()
        .find(|n| !c.replications.iter().any(|r| &r.name == *n))
    {
        eprintln!("{}: no replication named `{unknown}`", path.display());
        return Err(ExitCode::from(USAGE));
    }
    if !names.is_empty() {
        c.replications.retain(|r| names.contains(&r.name));
    }
    Ok(c)
}

/// What a one-shot command gathered: results in configuration order, and how many
/// replications' tasks panicked instead of giving one.
struct Done<T> {
    results: Vec<T>,
    crashed: usize,
}

/// Runs `job` on every replication's prober concurrently.
async fn on_every_prober<T, Fut>(config: &Config, job: impl Fn(Prober<S3Store>) -> Fut) -> Done<T>
where
    T: Send + 'static,
    Fut: Future<Output = Vec<T>> + Send + 'static,
{
    let metrics = Arc::new(metrics::Metrics::new());
    let clients = Clients::new(&config.aws, metrics.clone()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, rep) in config.replications.iter().enumerate() {
        let prober = daemon::build_prober(rep, &clients, &metrics, &config.aws).await;
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
