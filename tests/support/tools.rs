//! Binaries some tests need beyond the lab (`prometheus`, `chromium`): outside CI a missing
//! one skips the test with a notice; in CI (`CI` set, as `.ci/run` sets it) it is a failure,
//! since `.ci/run` installs them.

use std::path::PathBuf;

/// Whether the tests run in CI: `CI` set to anything but empty, `false` or `0`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `name` on `PATH`, or `None` (the test is skipped, with a notice) outside CI; in CI a
/// missing binary panics, naming the Debian package (`apt_package`) that provides it.
pub fn required_tool(name: &str, apt_package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if in_ci() => {
            panic!("CI is set but `{name}` is not on PATH (apt-get install {apt_package})")
        }
        None => {
            eprintln!(
                "SKIPPED: `{name}` not on PATH (apt-get install {apt_package}); CI would fail"
            );
            None
        }
    }
}
