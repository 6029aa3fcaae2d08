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
mod discovery;
mod emit;
mod http;
mod logging;
mod metrics;
mod model;
mod probe;
mod report;
mod scan;
mod status;
#[cfg(test)]
mod testing;
mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use aws::clients::{Clients, acting_for};
use aws::s3::S3Store;
use config::Config;
use daemon::Shard;
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

/// `--shard-index I --shard-count N`: probe only the replications whose name hashes to
/// shard I of N (both or neither).
#[derive(Args)]
struct ShardArgs {
    /// This instance's shard, 0 to N-1: it probes only the replications whose name hashes
    /// to it (FNV-1a 64 of the name, jump consistent hash). Needs --shard-count.
    #[arg(
        long,
        env = "REPLICANARY_SHARD_INDEX",
        value_name = "I",
        requires = "shard_count"
    )]
    shard_index: Option<u32>,
    /// How many shards split the replications (at least 1). Needs --shard-index.
    #[arg(
        long,
        env = "REPLICANARY_SHARD_COUNT",
        value_name = "N",
        requires = "shard_index"
    )]
    shard_count: Option<u32>,
}

/// How the endpoints are served: TLS, basic auth, the lifecycle API.
#[derive(Args)]
struct WebArgs {
    /// Web configuration file in the Prometheus exporter-toolkit format
    /// (tls_server_config, basic_auth_users): TLS and basic auth for every endpoint. Read
    /// again on every reload.
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config_file: Option<PathBuf>,
    /// Answer POST /-/reload (without it: 403). SIGHUP and the file poll reload anyway.
    #[arg(long = "web.enable-lifecycle")]
    web_enable_lifecycle: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: probe every replication on its interval; serve the status page and /metrics.
    ///
    /// Reloads its configuration on SIGHUP, on POST /-/reload and when the file's content
    /// changes (checked every --config-poll-interval): unchanged replications keep running,
    /// removed ones stop and are cleaned up, new ones start.
    Run {
        #[command(flatten)]
        file: ConfigFile,
        /// Address for the status page (/), /metrics, /healthz, /readyz and /-/reload.
        #[arg(long, default_value = "127.0.0.1:9879", value_name = "ADDR")]
        listen: SocketAddr,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// How long in-flight probes may finish before they are cancelled: on SIGTERM/SIGINT,
        /// and for a replication a reload removed or changed.
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        grace_period: Duration,
        /// How often the configuration file's content is checked for changes (a Kubernetes
        /// ConfigMap update included); 0s: never (SIGHUP and POST /-/reload still reload).
        #[arg(
            long,
            env = "REPLICANARY_CONFIG_POLL_INTERVAL",
            default_value = "5s",
            value_name = "DURATION",
            value_parser = humantime::parse_duration
        )]
        config_poll_interval: Duration,
        #[command(flatten)]
        shard: ShardArgs,
        #[command(flatten)]
        web: WebArgs,
    },
    /// Probe each (or each named) replication once, print a report, exit 0 if all are ok.
    Check(Selection),
    /// Read-only inspection of each replication's setup (no canary): exit 0 when there are no findings.
    Audit(Selection),
    /// Parse and validate the configuration without calling AWS.
    Validate {
        #[command(flatten)]
        file: ConfigFile,
        /// Also check this web configuration file (and the certificate files it names).
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
    },
    /// Judge every real object of each (or each named) replication, read-only: one class
    /// per object and destination. Exit 0 when all are ok or pending, 1 otherwise.
    Scan(ScanArgs),
    /// Run discovery once; print the replications it finds as configuration, every
    /// skipped bucket or rule with its reason, and the enabled replication rules nobody
    /// monitors (discovery.coverage). Exit 0, or 1 when something could not be read.
    Discover {
        #[command(flatten)]
        file: ConfigFile,
        #[arg(long, value_enum, default_value_t = DiscoverFormat::Yaml)]
        format: DiscoverFormat,
    },
}

/// `scan`'s options.
#[derive(Args)]
struct ScanArgs {
    #[command(flatten)]
    file: ConfigFile,
    /// Only this replication (repeatable).
    #[arg(long = "replication", value_name = "NAME")]
    replications: Vec<String>,
    /// Only keys under this prefix (within the rule's prefix).
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
    /// Stop after N objects per replication (a sample).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Also read the first byte of each replica (as the destination role): proves it decrypts.
    #[arg(long)]
    read: bool,
    /// Requests per second, at most (every request of the scan, retries included).
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Requests in flight, at most.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// Write one S3 Batch Operations manifest per destination into DIR: the source
    /// versions re-replication fixes.
    #[arg(long, value_name = "DIR")]
    manifest: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Start after this key (resume an interrupted scan).
    #[arg(long, value_name = "KEY")]
    start_after: Option<String>,
}

/// How `discover` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DiscoverFormat {
    /// A `replications:` list to paste, skips and unmonitored rules as comments.
    Yaml,
    /// `replications` to paste, `discovered` with every detail, `skipped`, `unmonitored`,
    /// `summary`.
    Json,
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
        Command::Validate {
            file,
            web_config_file,
        } => validate(&file.config, web_config_file.as_deref()),
        Command::Run {
            file,
            listen,
            log_format,
            grace_period,
            config_poll_interval,
            shard,
            web,
        } => {
            let shard = match (shard.shard_index, shard.shard_count) {
                (Some(i), Some(n)) => match Shard::new(i, n) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("replicanary: {e}");
                        return Ok(ExitCode::from(USAGE));
                    }
                },
                _ => Shard::ALL,
            };
            let loaded = match load_text(&file.config) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let web_live = match web::Live::load(web.web_config_file.as_deref()) {
                Ok(l) => Arc::new(l),
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(USAGE));
                }
            };
            logging::init(log_format, "info,aws_config=warn,aws_smithy_runtime=warn");
            let opts = daemon::Options {
                listen,
                grace: grace_period,
                shard,
                config_poll: config_poll_interval,
                web: web_live,
                lifecycle: web.web_enable_lifecycle,
            };
            runtime()?.block_on(daemon::run(loaded, opts))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Discover { file, format } => discover_once(&file.config, format),
        Command::Scan(args) => scan_once(args),
        Command::Check(sel) => once(sel, |config| async move {
            let never = tokio_util::sync::CancellationToken::new();
            on_every_prober(&config, move |prober| {
                let never = never.clone();
                async move {
                    let mut monitor = daemon::Monitor::new(prober);
                    monitor.probe(&never).await.given().unwrap_or_default()
                }
            })
            .await
        }),
        Command::Audit(sel) => once(sel, |config| async move {
            on_every_prober(&config, |prober| async move {
                let replication = prober.replication.name.clone();
                daemon::Monitor::new(prober)
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

/// `validate`: the file's errors (exit 2), or a one-line summary of what it configures.
fn validate(path: &Path, web_config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let c = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Some(web_path) = web_config {
        match web::Live::load(Some(web_path)) {
            Ok(live) => println!("{}: ok ({})", web_path.display(), live.summary()),
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(USAGE));
            }
        }
    }
    let dests: usize = c.replications.iter().map(|r| r.destinations.len()).sum();
    let discovery = c.discovery.as_ref().map_or(String::new(), |d| {
        format!(
            "; discovery in {} account(s) × {} region(s) every {}",
            d.source_accounts.len(),
            d.regions.len(),
            humantime::format_duration(d.interval)
        )
    });
    println!(
        "{}: ok ({} replications, {dests} destinations{discovery})",
        path.display(),
        c.replications.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `discover`: one pass, printed; progress on stderr.
fn discover_once(path: &Path, format: DiscoverFormat) -> anyhow::Result<ExitCode> {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let Some(d) = &config.discovery else {
        eprintln!(
            "{}: no `discovery:` section: nothing to discover",
            path.display()
        );
        return Ok(ExitCode::from(USAGE));
    };
    logging::init(LogFormat::Text, "error");
    let progress = |p: discovery::Progress<'_>| match p {
        discovery::Progress::Listed {
            account,
            region,
            buckets,
        } => eprintln!(
            "listed {} buckets in {account}/{region}",
            thousands(buckets)
        ),
        discovery::Progress::Read {
            account,
            region,
            done,
            of,
        } => eprintln!(
            "read {} of {} buckets in {account}/{region}",
            thousands(done),
            thousands(of)
        ),
    };
    let canary_prefix = &config.defaults.canary_prefix;
    let pass = runtime()?.block_on(async {
        let metrics = Arc::new(metrics::Metrics::new());
        let clients = Clients::new(&config.aws, metrics).await;
        let readers = discovery::SdkReaders {
            clients: &clients,
            discovery: d,
        };
        let hints = discovery::Hints::default();
        discovery::discover(&readers, d, canary_prefix, &hints, &progress).await
    });
    let explicit = &config.replications;
    print!(
        "{}",
        match format {
            DiscoverFormat::Yaml => discovery::render::yaml(&pass, explicit, d, canary_prefix),
            DiscoverFormat::Json => discovery::render::json(&pass, explicit, d, canary_prefix),
        }
    );
    let errors = pass.skips().filter(|s| s.reason.is_error()).count();
    let unmonitored = if pass.coverage {
        let n = discovery::coverage::uncovered(&pass, explicit).len();
        format!("; {n} enabled replication rules no replication probes")
    } else {
        String::new()
    };
    eprintln!(
        "discovered {} replications, skipped {} buckets or rules ({errors} could not be read){unmonitored} in {:.2}s",
        pass.found().count(),
        pass.skips().count(),
        pass.took.as_secs_f64()
    );
    Ok(if pass.had_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `scan`: one pass over the selected replications; the report on stdout, progress and
/// the resume key on stderr.
fn scan_once(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let config = match load(&args.file.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let config = match select(config, &args.file.config, &args.replications) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Some(dir) = &args.manifest
        && !dir.is_dir()
    {
        eprintln!("--manifest {}: not a directory", dir.display());
        return Ok(ExitCode::from(USAGE));
    }
    logging::init(LogFormat::Text, "error");
    let opts = scan::Options {
        prefix: args.prefix,
        limit: args.limit,
        read: args.read,
        concurrency: args.concurrency as usize,
        start_after: args.start_after,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let report = runtime()?.block_on(async {
        let on_ctrl_c = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: printing the partial counts");
                on_ctrl_c.cancel();
            }
        });
        scan::command::scan_all(&config, &opts, args.rate, args.manifest.as_deref(), &stop).await
    })?;
    print!(
        "{}",
        match args.format {
            ReportFormat::Text => report.text(),
            ReportFormat::Json => report.json(),
        }
    );
    for r in report
        .replications
        .iter()
        .filter(|r| r.resume_after.is_some())
    {
        if let Some(key) = &r.resume_after {
            eprintln!(
                "resume {} with: --replication {} --start-after {key:?}",
                r.name, r.name
            );
        }
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `1234567` → `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Loads the configuration for `run`, keeping its text (a reload compares against it).
fn load_text(path: &Path) -> Result<daemon::Loaded, ExitCode> {
    let loaded = Config::read(path).and_then(|text| {
        let config = Config::parse_file(path, &text)?;
        warn_about(path, &config);
        Ok(daemon::Loaded {
            path: path.to_owned(),
            text,
            config,
        })
    });
    loaded.map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(USAGE)
    })
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    let config = Config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(USAGE)
    })?;
    warn_about(path, &config);
    Ok(config)
}

/// Prints what is valid but probably not meant (see `Config::warnings`).
fn warn_about(path: &Path, config: &Config) {
    for w in config.warnings() {
        eprintln!("{}: warning: {}: {}", path.display(), w.path, w.message);
    }
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
    let config = match load(&sel.file.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    logging::init(LogFormat::Text, "error");
    let rt = runtime()?;
    let (config, discovery_errors) = rt.block_on(with_discovered(config));
    let config = match select(config, &sel.file.config, &sel.replications) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let done = rt.block_on(job(config));
    print!("{}", T::render(&done.results, sel.format));
    if done.crashed > 0 {
        eprintln!(
            "replicanary: {} replication(s) could not be checked: their task panicked",
            done.crashed
        );
    }
    let clean = done.crashed == 0 && discovery_errors == 0 && T::clean(&done.results);
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What `check` and `audit` look at is what `run` would probe: the configured
/// replications and, with `discovery:`, what one discovery pass finds (a configured
/// replication wins over a discovered one for the same rule). Also returns how many
/// buckets or rules discovery could not read (each named on stderr).
async fn with_discovered(mut config: Config) -> (Config, usize) {
    let Some(mut d) = config.discovery.clone() else {
        return (config, 0);
    };
    // What to probe is all they need: the rules nobody monitors are `discover`'s and `run`'s.
    d.coverage = false;
    let metrics = Arc::new(metrics::Metrics::new());
    let clients = Clients::new(&config.aws, metrics).await;
    let readers = discovery::SdkReaders {
        clients: &clients,
        discovery: &d,
    };
    let hints = discovery::Hints::default();
    let prefix = &config.defaults.canary_prefix;
    let pass = discovery::discover(&readers, &d, prefix, &hints, &|_| {}).await;
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

/// Keeps only the named replications (all if none named).
fn select(mut c: Config, path: &Path, names: &[String]) -> Result<Config, ExitCode> {
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
    // One-shot commands report verdicts themselves: their board is never shown.
    let sinks = emit::Sinks::new(metrics, Arc::default());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, rep) in config.replications.iter().enumerate() {
        let prober = daemon::build_prober(rep, &clients, &sinks, &config.aws).await;
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
