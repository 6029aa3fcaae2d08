//! `scan`: one pass over the selected replications; the report on stdout, progress and the
//! resume key on stderr.

use std::path::PathBuf;

use super::{Ending, Error, load, runtime, select};
use crate::logging::{self, LogFormat};
use crate::report::ReportFormat;
use crate::scan;

/// What the command line asked `scan` for.
pub struct Request {
    pub config: PathBuf,
    /// Only these replications (all if none).
    pub replications: Vec<String>,
    pub options: scan::Options,
    /// Requests per second, at most.
    pub rate: u32,
    /// Where to write the S3 Batch Operations manifests.
    pub manifest: Option<PathBuf>,
    pub format: ReportFormat,
}

/// Clean when every object is ok or pending.
pub fn scan(req: Request) -> Result<Ending, Error> {
    let config = load(&req.config)?;
    let config = select(config, &req.config, &req.replications)?;
    if let Some(dir) = &req.manifest
        && !dir.is_dir()
    {
        return Err(Error::NotADirectory { dir: dir.clone() });
    }
    logging::init(LogFormat::Text, "error");
    let stop = tokio_util::sync::CancellationToken::new();
    let report = runtime()?.block_on(async {
        let on_ctrl_c = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: printing the partial counts");
                on_ctrl_c.cancel();
            }
        });
        scan::command::scan_all(
            &config,
            &req.options,
            req.rate,
            req.manifest.as_deref(),
            &stop,
        )
        .await
    })?;
    print!(
        "{}",
        match req.format {
            ReportFormat::Text => report.text(),
            ReportFormat::Json => report.json(),
        }
    );
    for r in &report.replications {
        if let Some(key) = &r.resume_after {
            eprintln!(
                "resume {} with: --replication {} --start-after {key:?}",
                r.name, r.name
            );
        }
    }
    Ok(Ending::clean_if(report.clean()))
}
