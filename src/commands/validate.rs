//! `validate`: the configuration (and the web configuration) checked without calling AWS.

use std::path::Path;

use super::{Ending, Error, load};
use crate::web;

/// The file's errors, or a one-line summary of what it configures.
pub fn validate(path: &Path, web_config: Option<&Path>) -> Result<Ending, Error> {
    let c = load(path)?;
    if let Some(web_path) = web_config {
        let live = web::Live::load(Some(web_path))?;
        println!("{}: ok ({})", web_path.display(), live.summary());
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
    Ok(Ending::Clean)
}
