//! Unit tests of the daemon that span its files, and their shared support.

pub mod fake;
mod reload;
mod task;
