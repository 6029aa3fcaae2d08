//! A finding: one named cause behind a verdict, with how to fix it.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Bounded snake_case id: the `finding` label value.
    pub id: &'static str,
    pub explanation: String,
    pub fix: String,
}
