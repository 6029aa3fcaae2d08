//! The process facts the page's header shows beside the rows: this instance's shard and
//! the last configuration loads, kept as set (the series on `/metrics` hold only numbers;
//! `emit::Sinks` writes both).

use super::Board;

/// What the header shows about the process.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessState {
    /// `(index, count)` as last set.
    pub shard: Option<(u32, u32)>,
    /// The last (re)load of the configuration: whether it succeeded, and when (Unix time).
    pub last_load: Option<(bool, f64)>,
    /// Unix time of the last successful (re)load.
    pub last_successful_load: Option<f64>,
}

impl Board {
    fn process(&self) -> std::sync::MutexGuard<'_, ProcessState> {
        self.process.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a (re)load of the configuration at `at_unix`.
    pub fn config_loaded(&self, successful: bool, at_unix: f64) {
        let mut state = self.process();
        state.last_load = Some((successful, at_unix));
        if successful {
            state.last_successful_load = Some(at_unix);
        }
    }

    /// This instance's shard.
    pub fn set_shard(&self, index: u32, count: u32) {
        self.process().shard = Some((index, count));
    }

    /// The shard and the last configuration load, as last recorded.
    pub fn process_state(&self) -> ProcessState {
        *self.process()
    }
}
