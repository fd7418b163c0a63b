//! The fixed paths the exporter serves beside the telemetry path, declared
//! once: the router mounts each, the landing page links them in this order,
//! and the telemetry path may take none of them.

pub struct Endpoint {
    pub path: &'static str,
    /// The landing page's link text.
    pub link: &'static str,
    /// What it is, in the message when `--web.telemetry-path` would take it.
    pub what: &'static str,
}

/// The HTML report of the current data (`output::report`).
pub const REPORT: Endpoint = Endpoint {
    path: "/report",
    link: "Report",
    what: "the HTML report's path",
};

/// Liveness: 200 while the process runs.
pub const HEALTHY: Endpoint = Endpoint {
    path: "/-/healthy",
    link: "Health",
    what: "the liveness probe's path",
};

/// Readiness: 200 once an account has been read.
pub const READY: Endpoint = Endpoint {
    path: "/-/ready",
    link: "Readiness",
    what: "the readiness probe's path",
};

/// Every fixed endpoint but the landing page (`/`) itself, in the order
/// the landing page links them after the metrics.
pub const LINKED: [&Endpoint; 3] = [&REPORT, &HEALTHY, &READY];
