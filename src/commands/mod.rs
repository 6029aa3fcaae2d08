//! What each command does, below the command line: `run`, `check` and `audit`, `validate`,
//! `discover`, `scan`. `main.rs` parses the arguments, calls one of these and turns what
//! it returns into the exit code: an [`Ending`], or an [`Error`] (2 for usage and
//! configuration, 1 for anything else).
//!
//! Each command loads the configuration here (its warnings on stderr), then builds one
//! [`crate::estate::Estate`]: the one pool of clients its AWS calls go through.

pub mod check;
pub mod discover;
pub mod run;
pub mod scan;
pub mod validate;

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::daemon::ShardError;

/// How a command that ran to its end ended: exit 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Everything checked is fine (or the daemon stopped as asked): exit 0.
    Clean,
    /// The command ran, and found or met something wrong: exit 1.
    Unclean,
}

impl Ending {
    fn clean_if(clean: bool) -> Ending {
        if clean {
            Ending::Clean
        } else {
            Ending::Unclean
        }
    }
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file, or the web configuration file: every problem, by field path.
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("replicanary: {0}")]
    Shard(#[from] ShardError),
    #[error("{}: no replication named `{name}`", path.display())]
    UnknownReplication { path: PathBuf, name: String },
    #[error("{}: no `discovery:` section: nothing to discover", path.display())]
    NoDiscovery { path: PathBuf },
    #[error("--manifest {}: not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    /// The daemon could not start, or did not stop cleanly.
    #[error(transparent)]
    Daemon(#[from] crate::daemon::Error),
    #[error(transparent)]
    Manifest(#[from] crate::scan::command::ManifestError),
    /// The tokio runtime could not be built.
    #[error(transparent)]
    Runtime(std::io::Error),
}

impl Error {
    /// A usage or configuration error (exit 2), not a failure of the work (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            Error::Daemon(_) | Error::Manifest(_) | Error::Runtime(_)
        )
    }
}

/// Loads and validates the configuration; prints its warnings.
fn load(path: &Path) -> Result<Config, Error> {
    let config = Config::load(path)?;
    warn_about(path, &config);
    Ok(config)
}

/// Prints what is valid but probably not meant (see `Config::warnings`).
fn warn_about(path: &Path, config: &Config) {
    for w in config.warnings() {
        eprintln!("{}: warning: {}: {}", path.display(), w.path, w.message);
    }
}

/// Keeps only the named replications (all if none named).
fn select(mut c: Config, path: &Path, names: &[String]) -> Result<Config, Error> {
    if let Some(unknown) = names
        .iter()
        .find(|n| !c.replications.iter().any(|r| &r.name == *n))
    {
        return Err(Error::UnknownReplication {
            path: path.to_owned(),
            name: unknown.clone(),
        });
    }
    if !names.is_empty() {
        c.replications.retain(|r| names.contains(&r.name));
    }
    Ok(c)
}

/// One thread runs every probe: a probe is almost all waiting, and at 1,000 replications
/// the daemon uses ~5 % of a core. Measured against two workers (docs/performance.md,
/// "Runtime and allocator"): 6–11 % less CPU per probe, a third less system time, two
/// threads instead of four. /metrics is encoded on tokio's blocking pool all the same.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}
