//! Why discovery did not turn a bucket or rule into a replication: a bounded keyword (the
//! `reason` label of `replicanary_discovery_errors_total`), and whether it is an error.
//!
//! Two kinds. **Choices and facts of the estate** — a bucket nobody opted in, a disabled
//! rule, a rule another rule shadows — are reported (by `discover` and in the log) but not
//! counted: they are how the estate is meant to be, and counting them would keep the
//! discovery alert firing for ever. **Errors** — something discovery could not read or a
//! role it could not act as — are counted: coverage is missing and someone can fix it.

use crate::model::{AwsError, ErrorClass};

/// Why a bucket or rule is not probed: its bounded reason, and the detail for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} — {detail}")]
pub struct Unprobed {
    pub reason: SkipReason,
    pub detail: String,
}

impl Unprobed {
    pub fn new(reason: SkipReason, detail: String) -> Unprobed {
        Unprobed { reason, detail }
    }
}

/// A skipped bucket or rule's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The bucket does not carry the opt-in tag with its value.
    Untagged,
    /// Opted in, but the bucket has no replication configuration.
    NoReplicationConfiguration,
    /// The rule's `Status` is `Disabled`.
    RuleDisabled,
    /// A rule of higher (or equal) priority to the same destination selects the canaries.
    Shadowed,
    /// No canary can satisfy the rule's filter (conflicting tags, a key beyond 1,024 bytes).
    UnsatisfiableFilter,
    /// The rule cannot be named or aimed: no ID, an ID used twice or with control
    /// characters, a destination that is not a bucket ARN.
    InvalidRule,
    /// The destination account's probe role cannot be assumed.
    DestinationRoleUnavailable,
    /// No configured account's destination role owns the destination bucket.
    DestinationAccountUnknown,
    /// S3 refused a read (`AccessDenied` or another 403).
    AccessDenied,
    /// The source account's probe role cannot be assumed.
    RoleNotAssumable,
    /// Throttling or another transient fault (5xx, timeout, network) outlasted the retries.
    Throttled,
    /// Any other failure of a read.
    Error,
}

impl SkipReason {
    /// The bounded keyword (label value, `discover`'s `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Untagged => "untagged",
            SkipReason::NoReplicationConfiguration => "no_replication_configuration",
            SkipReason::RuleDisabled => "rule_disabled",
            SkipReason::Shadowed => "shadowed",
            SkipReason::UnsatisfiableFilter => "unsatisfiable_filter",
            SkipReason::InvalidRule => "invalid_rule",
            SkipReason::DestinationRoleUnavailable => "destination_role_unavailable",
            SkipReason::DestinationAccountUnknown => "destination_account_unknown",
            SkipReason::AccessDenied => "access_denied",
            SkipReason::RoleNotAssumable => "role_not_assumable",
            SkipReason::Throttled => "throttled",
            SkipReason::Error => "error",
        }
    }

    /// Whether it counts in `replicanary_discovery_errors_total` and makes `discover` exit 1:
    /// discovery could not read something, or could not act as a role.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            SkipReason::DestinationRoleUnavailable
                | SkipReason::DestinationAccountUnknown
                | SkipReason::AccessDenied
                | SkipReason::RoleNotAssumable
                | SkipReason::Throttled
                | SkipReason::Error
        )
    }

    /// Whether the answer behind it may change on its own (a fault, not an answer about
    /// the estate): what was discovered before stands until a read succeeds.
    pub fn keeps_previous(self) -> bool {
        self.is_error()
    }

    /// The reason of a failed read made as the source role.
    pub fn of_source_read(e: &AwsError) -> SkipReason {
        match e.class {
            ErrorClass::Credentials => SkipReason::RoleNotAssumable,
            _ => SkipReason::of_read(e),
        }
    }

    /// The reason of a failed read made as a destination role.
    pub fn of_destination_read(e: &AwsError) -> SkipReason {
        match e.class {
            ErrorClass::Credentials => SkipReason::DestinationRoleUnavailable,
            _ => SkipReason::of_read(e),
        }
    }

    fn of_read(e: &AwsError) -> SkipReason {
        match e.class {
            ErrorClass::Transient => SkipReason::Throttled,
            ErrorClass::AccessDenied | ErrorClass::Forbidden => SkipReason::AccessDenied,
            _ => SkipReason::Error,
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
