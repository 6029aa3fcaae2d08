//! `run`: the daemon, from the command line's options.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Ending, Error, runtime, warn_about};
use crate::config::Config;
use crate::daemon::{self, Shard};
use crate::logging::{self, LogFormat};
use crate::web;

/// What the command line asked `run` for.
pub struct Request {
    pub config: PathBuf,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub grace: Duration,
    pub config_poll: Duration,
    /// `--shard-index` and `--shard-count`, when given (clap asks for both or neither).
    pub shard: Option<(u32, u32)>,
    pub web_config: Option<PathBuf>,
    pub lifecycle: bool,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(req: Request) -> Result<Ending, Error> {
    let shard = match req.shard {
        Some((i, n)) => Shard::new(i, n)?,
        None => Shard::ALL,
    };
    let loaded = load_text(&req.config)?;
    let web = Arc::new(web::Live::load(req.web_config.as_deref())?);
    logging::init(
        req.log_format,
        "info,aws_config=warn,aws_smithy_runtime=warn",
    );
    let opts = daemon::Options {
        listen: req.listen,
        grace: req.grace,
        shard,
        config_poll: req.config_poll,
        web,
        lifecycle: req.lifecycle,
    };
    runtime()?.block_on(daemon::run(loaded, opts))?;
    Ok(Ending::Clean)
}

/// Loads the configuration for `run`, keeping its text (a reload compares against it).
fn load_text(path: &Path) -> Result<daemon::Loaded, Error> {
    let text = Config::read(path)?;
    let config = Config::parse_file(path, &text)?;
    warn_about(path, &config);
    Ok(daemon::Loaded {
        path: path.to_owned(),
        text,
        config,
    })
}
