//! `readers:` of a destination and `discovery.readers`: the principals each probe reads the
//! replica as. Names are label values (`[a-z0-9_-]{1,32}`, unique per destination); role
//! ARNs are checked like the probe roles'. A reader that is the destination's probe role
//! itself proves nothing new: a warning, not an error.

use std::collections::HashSet;

use super::super::raw::RawReader;
use super::super::{Config, FieldError, Reader, ReaderTemplate, Role};
use super::{Validator, check_external_id, check_role_arn};

/// The longest reader name (a label value, shown in a table column).
const MAX_READER_NAME: usize = 32;

impl Validator {
    /// A destination's `readers` (`path` is the destination's path).
    pub(super) fn readers(&mut self, raw: Option<Vec<RawReader>>, path: &str) -> Vec<Reader> {
        let mut readers = Vec::new();
        let mut names = HashSet::new();
        for (i, r) in raw.unwrap_or_default().into_iter().enumerate() {
            let rpath = format!("{path}.readers[{i}]");
            let name = self.reader_name(r.name, &rpath, &mut names);
            let role = match r.role_arn {
                None => {
                    self.error(
                        &format!("{rpath}.role_arn"),
                        "missing: the reader's IAM role ARN",
                    );
                    None
                }
                Some(arn) => match check_role_arn(&arn) {
                    Ok(()) => Some(arn),
                    Err(m) => {
                        self.error(&format!("{rpath}.role_arn"), m);
                        None
                    }
                },
            };
            let external_id = self.reader_external_id(r.external_id, &rpath);
            if let (Some(name), Some(arn), Some(external_id)) = (name, role, external_id) {
                readers.push(Reader {
                    name,
                    role: Role { arn, external_id },
                });
            }
        }
        readers
    }

    /// `discovery.readers`: role ARNs with `{account}`.
    pub(super) fn reader_templates(&mut self, raw: Option<Vec<RawReader>>) -> Vec<ReaderTemplate> {
        let mut out = Vec::new();
        let mut names = HashSet::new();
        for (i, r) in raw.unwrap_or_default().into_iter().enumerate() {
            let rpath = format!("discovery.readers[{i}]");
            let name = self.reader_name(r.name, &rpath, &mut names);
            let role = self.role_template(r.role_arn, &format!("{rpath}.role_arn"));
            let external_id = self.reader_external_id(r.external_id, &rpath);
            if let (Some(name), Some(role), Some(external_id)) = (name, role, external_id) {
                out.push(ReaderTemplate {
                    name,
                    role,
                    external_id,
                });
            }
        }
        out
    }

    fn reader_name(
        &mut self,
        raw: Option<String>,
        rpath: &str,
        seen: &mut HashSet<String>,
    ) -> Option<String> {
        let path = format!("{rpath}.name");
        let Some(name) = raw else {
            self.error(&path, "missing: the reader's name (the `reader` label)");
            return None;
        };
        if let Err(m) = check_reader_name(&name) {
            self.error(&path, m);
            return None;
        }
        if !seen.insert(name.clone()) {
            self.error(&path, format!("duplicate reader name `{name}`"));
            return None;
        }
        Some(name)
    }

    /// `Some(None)`: no external id; `None`: an invalid one (recorded).
    fn reader_external_id(&mut self, raw: Option<String>, rpath: &str) -> Option<Option<String>> {
        match raw {
            None => Some(None),
            Some(x) => match check_external_id(&x) {
                Ok(()) => Some(Some(x)),
                Err(m) => {
                    self.error(&format!("{rpath}.external_id"), m);
                    None
                }
            },
        }
    }
}

/// `[a-z0-9_-]{1,32}`.
fn check_reader_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= MAX_READER_NAME
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{n}` must be 1 to {MAX_READER_NAME} characters of a-z, 0-9, `_` and `-`"
        ))
    }
}

/// What is valid but probably not meant: a reader that is the destination's probe role
/// itself (the destination's own read already proves what it would).
pub(crate) fn warnings(config: &Config) -> Vec<FieldError> {
    let same = "this reader is the destination's probe role itself: its read proves nothing \
                the destination's own read does not; name the role that must read the replicas";
    let mut out = Vec::new();
    for (i, rep) in config.replications.iter().enumerate() {
        for (j, d) in rep.destinations.iter().enumerate() {
            for (k, r) in d.readers.iter().enumerate() {
                if d.role.as_ref().is_some_and(|p| p.arn == r.role.arn) {
                    out.push(FieldError {
                        path: format!("replications[{i}].destinations[{j}].readers[{k}].role_arn"),
                        message: same.to_owned(),
                    });
                }
            }
        }
    }
    if let Some(d) = &config.discovery {
        for (k, r) in d.readers.iter().enumerate() {
            if r.role == d.destination_role {
                out.push(FieldError {
                    path: format!("discovery.readers[{k}].role_arn"),
                    message: same.to_owned(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
