//! The shared vocabulary: what a probe concludes and the words its labels are made of.
//!
//! Every other module speaks it; it imports nothing of the crate. Verdicts, outcomes,
//! sides, findings and classified AWS errors are plain data here — what produces them
//! (`probe`, `diagnose`, `aws`) and what consumes them (`metrics`, `emit`, `report`) sit
//! above.

pub mod coverage;
pub mod error;
pub mod finding;
pub mod outcome;
pub mod reader;
pub mod scan_class;
pub mod side;
pub mod verdict;

pub use coverage::UnmonitoredRule;
pub use error::{AwsError, ErrorClass};
pub use finding::{Finding, FindingId};
pub use outcome::Outcome;
pub use reader::{ReaderOutcome, ReaderVerdict};
pub use scan_class::ScanClass;
pub use side::Side;
pub use verdict::{DestinationVerdict, ReplicaFacts};
