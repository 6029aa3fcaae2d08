//! replicanary: proves, all day long, that S3 cross-account replication of SSE-KMS
//! objects works and that the destination account can read what arrives.
//!
//! This file is the command line only (arguments, dispatch, exit codes); what each
//! command does is in `commands/`. See ARCHITECTURE.md for the map.

mod aws;
mod canary;
mod cleanup;
mod commands;
mod config;
mod daemon;
mod diagnose;
mod discovery;
mod emit;
mod estate;
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
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use commands::Ending;
use commands::discover::Format as DiscoverFormat;
use logging::LogFormat;
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

/// Exit code for usage and configuration errors.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(Ending::Clean) => ExitCode::SUCCESS,
        Ok(Ending::Unclean) => ExitCode::FAILURE,
        Err(e) if e.is_usage() => {
            eprintln!("{e}");
            ExitCode::from(USAGE)
        }
        Err(e) => {
            eprintln!("replicanary: {:#}", anyhow::Error::new(e));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<Ending, commands::Error> {
    match cli.command {
        Command::Validate {
            file,
            web_config_file,
        } => commands::validate::validate(&file.config, web_config_file.as_deref()),
        Command::Run {
            file,
            listen,
            log_format,
            grace_period,
            config_poll_interval,
            shard,
            web,
        } => commands::run::run(commands::run::Request {
            config: file.config,
            listen,
            log_format,
            grace: grace_period,
            config_poll: config_poll_interval,
            shard: shard.shard_index.zip(shard.shard_count),
            web_config: web.web_config_file,
            lifecycle: web.web_enable_lifecycle,
        }),
        Command::Discover { file, format } => commands::discover::discover(&file.config, format),
        Command::Scan(args) => commands::scan::scan(commands::scan::Request {
            config: args.file.config,
            replications: args.replications,
            options: scan::Options {
                prefix: args.prefix,
                limit: args.limit,
                read: args.read,
                concurrency: args.concurrency as usize,
                start_after: args.start_after,
            },
            rate: args.rate,
            manifest: args.manifest,
            format: args.format,
        }),
        Command::Check(sel) => commands::check::check(sel.into()),
        Command::Audit(sel) => commands::check::audit(sel.into()),
    }
}

impl From<Selection> for commands::check::Request {
    fn from(sel: Selection) -> Self {
        commands::check::Request {
            config: sel.file.config,
            replications: sel.replications,
            format: sel.format,
        }
    }
}
