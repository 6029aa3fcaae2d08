//! `discover`: one discovery pass, printed as configuration; progress on stderr.

use std::path::Path;
use std::sync::Arc;

use super::{Ending, Error, load, runtime};
use crate::discovery::{self, Hints, Progress};
use crate::estate::Estate;
use crate::logging::{self, LogFormat};
use crate::metrics::Metrics;

/// How `discover` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A `replications:` list to paste, skips and unmonitored rules as comments.
    Yaml,
    /// `replications` to paste, `discovered` with every detail, `skipped`, `unmonitored`,
    /// `summary`.
    Json,
}

/// One pass: the replications found on stdout, a summary on stderr; unclean when
/// something could not be read.
pub fn discover(path: &Path, format: Format) -> Result<Ending, Error> {
    let config = load(path)?;
    let Some(d) = &config.discovery else {
        return Err(Error::NoDiscovery {
            path: path.to_owned(),
        });
    };
    logging::init(LogFormat::Text, "error");
    let canary_prefix = &config.defaults.canary_prefix;
    let pass = runtime()?.block_on(async {
        let estate = Estate::new(&config.aws, Arc::new(Metrics::new())).await;
        estate
            .discover(d, canary_prefix, &Hints::default(), &progress)
            .await
    });
    let explicit = &config.replications;
    print!(
        "{}",
        match format {
            Format::Yaml => discovery::render::yaml(&pass, explicit, d, canary_prefix),
            Format::Json => discovery::render::json(&pass, explicit, d, canary_prefix),
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
    Ok(Ending::clean_if(!pass.had_errors()))
}

/// A pass's progress, one line each on stderr.
fn progress(p: Progress<'_>) {
    match p {
        Progress::Listed {
            account,
            region,
            buckets,
        } => eprintln!(
            "listed {} buckets in {account}/{region}",
            thousands(buckets)
        ),
        Progress::Read {
            account,
            region,
            done,
            of,
        } => eprintln!(
            "read {} of {} buckets in {account}/{region}",
            thousands(done),
            thousands(of)
        ),
    }
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

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
