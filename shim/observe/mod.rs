//! Observation: what the `LWKT_*` variables ask for, and what the library
//! tells people (misuse reports, warnings, the statistics report).
//!
//! - `line`: one line on stderr, warnings, errno in words (the bottom);
//! - `config`: the `LWKT_*` environment variables, read once at load;
//! - `diag`: misuse reports (SPEC S10) and the names in messages;
//! - `stats`: the `LWKT_STATS` counters, and the report's text;
//! - `report`: where the report goes, whole or not at all;
//! - `checkers`: telling ThreadSanitizer, Helgrind or DRD what the tokens
//!   order (uses `config` only).
//!
//! Inside the layer: `line` ← `config` ← `diag`, `report` ← `stats`, each
//! using only what is to its left (and `sys`). The layer reads the token
//! layer (`token`, `thread`, `pool`) to name tokens and threads; the API
//! uses `diag`. The token layer still calls into this one directly
//! (`diag::misuse`, `diag::warn`, the `config` flags, the `stats` events):
//! those calls are to become a narrow interface.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub(crate) mod checkers;
pub(crate) mod config;
pub(crate) mod diag;
mod line;
pub(crate) mod report;
pub(crate) mod stats;

/// At load, before the token layer starts: the variables first (the rest
/// depends on them), then the report's stderr, then the statistics table.
pub(crate) fn init_process() {
    config::init_process();
    report::init_process();
    stats::init_process();
    checkers::init_process();
}
