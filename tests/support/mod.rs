//! Test support, one file per concern: `lab` (the AWS stand-in), `daemon` (the real
//! binary), `exposition` (`/metrics` parsed), `http` (loopback requests), `root_s3` (objects
//! as a user writes them), `tempdir`, `tools` (binaries a test needs: skipped outside CI,
//! required in it), `prometheus` (a real Prometheus) and `backlog` (a bucket's backlog).

// Each test crate (one per tests/*.rs file) uses a different part of this module, and its
// re-exports are the paths the tests name (`support::Lab`, `support::binary()`).
#![allow(dead_code, unused_imports)]

pub mod backlog;
pub mod daemon;
pub mod exposition;
pub mod http;
pub mod lab;
pub mod prometheus;
pub mod root_s3;
pub mod tempdir;
pub mod tools;

use std::time::{Duration, Instant};

pub use daemon::{BASE_ACCESS_KEY, Daemon, aws_env, binary, check, outcome_of};
pub use exposition::Metrics;
pub use http::{free_port, http_get, http_post, parse_response};
pub use lab::Lab;
pub use root_s3::RootS3;

/// Polls `f` every 100 ms until it is true or `timeout` passes; returns whether it held.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_until(timeout: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, f),
        "timed out after {timeout:?} waiting for {what}"
    );
}
