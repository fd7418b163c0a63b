//! Outputs: renderings of the assessed snapshot, computing nothing. The
//! `/metrics` exposition ([`metrics`], with [`key_series`] choosing its
//! per-key families and [`process`] the process's own), the audit report in
//! every format ([`report`]) and the landing page ([`status_page`]). Imports
//! the domain only.

pub mod endpoints;
pub mod key_series;
pub mod metrics;
pub mod process;
pub mod report;
pub mod status_page;
