//! replicanary: proves, all day long, that S3 cross-account replication of SSE-KMS
//! objects works and that the destination account can read what arrives.
//!
//! This file is the command line only; see ARCHITECTURE.md for the map.

mod aws;
mod cleanup;
mod config;
mod daemon;
mod diagnose;
mod http;
mod logging;
mod metrics;
mod probe;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use aws::s3::S3Store;
use config::Config;
use logging::LogFormat;
use probe::Prober;
use probe::verdict::Outcome;
use report::ReportFormat;

#[derive(Parser)]
#[command(
    version,
    about = "Canary probes for S3 cross-account replication of SSE-KMS objects"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: probe every replication on its interval and serve /metrics.
    Run {
        #[arg(long, env = "REPLICANARY_CONFIG", value_name = "FILE")]
        config: PathBuf,
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
    Check {
        #[arg(long, env = "REPLICANARY_CONFIG", value_name = "FILE")]
        config: PathBuf,
        /// Only this replication (repeatable).
        #[arg(long = "replication", value_name = "NAME")]
        replications: Vec<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Read-only inspection of each replication's setup (no canary): exit 0 when there are no findings.
    Audit {
        #[arg(long, env = "REPLICANARY_CONFIG", value_name = "FILE")]
        config: PathBuf,
        /// Only this replication (repeatable).
        #[arg(long = "replication", value_name = "NAME")]
        replications: Vec<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Parse and validate the configuration without calling AWS.
    Validate {
        #[arg(long, env = "REPLICANARY_CONFIG", value_name = "FILE")]
        config: PathBuf,
    },
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

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(USAGE)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { config } => {
            let c = match load(&config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let dests: usize = c.replications.iter().map(|r| r.destinations.len()).sum();
            println!(
                "{}: ok ({} replications, {dests} destinations)",
                config.display(),
                c.replications.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            listen,
            log_format,
            grace_period,
        } => {
            let c = match load(&config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            logging::init(log_format, "info,aws_config=warn,aws_smithy_runtime=warn");
            runtime()?.block_on(daemon::run(c, listen, grace_period))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            config,
            replications,
            format,
        } => {
            let c = match load_selected(&config, &replications) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            logging::init(LogFormat::Text, "error");
            let verdicts = runtime()?.block_on(check(c));
            print!("{}", report::render(&verdicts, format));
            let all_ok = !verdicts.is_empty() && verdicts.iter().all(|v| v.outcome == Outcome::Ok);
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Audit {
            config,
            replications,
            format,
        } => {
            let c = match load_selected(&config, &replications) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            logging::init(LogFormat::Text, "error");
            let entries = runtime()?.block_on(audit(c));
            print!("{}", report::render_audit(&entries, format));
            let clean = entries.iter().all(|e| e.findings.is_empty());
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Loads the configuration, keeping only the named replications (all if none named).
fn load_selected(path: &std::path::Path, names: &[String]) -> Result<Config, ExitCode> {
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

/// Runs `job` on every replication's prober concurrently; results in configuration order.
async fn on_every_prober<T, Fut>(config: &Config, job: impl Fn(Prober<S3Store>) -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = Vec<T>> + Send + 'static,
{
    let metrics = Arc::new(metrics::Metrics::new());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, prober) in daemon::build_probers(config, &metrics)
        .await
        .into_iter()
        .enumerate()
    {
        let work = job(prober);
        tasks.spawn(async move { (i, work.await) });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(r) = r {
            results.push(r);
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().flat_map(|(_, v)| v).collect()
}

/// The setup checks of every replication.
async fn audit(config: Config) -> Vec<report::AuditEntry> {
    on_every_prober(&config, |mut prober| async move {
        let name = prober.replication.name.clone();
        let found = prober.audit().await;
        found
            .into_iter()
            .map(|(destination, findings)| report::AuditEntry {
                replication: name.clone(),
                destination,
                findings,
            })
            .collect()
    })
    .await
}

/// One probe of every replication.
async fn check(config: Config) -> Vec<probe::verdict::DestinationVerdict> {
    let never = tokio_util::sync::CancellationToken::new();
    on_every_prober(&config, move |mut prober| {
        let never = never.clone();
        async move { prober.probe(&never).await.unwrap_or_default() }
    })
    .await
}
