//! The `process_*` metrics every Prometheus exporter has (the names and
//! meanings of the Go and Python clients' process collectors): CPU time,
//! resident and virtual memory, open and maximum file descriptors, start
//! time. Read from `/proc/self` at each scrape; prometheus-client has no
//! process collector, and the crates that do are for other metric libraries.
//! On systems without `/proc` nothing is written. Also the open files limit,
//! raised at start as the Go exporters do. A leaf.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

/// Registered once, at the root; see [`ProcessCollector::encode`].
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of the process's figures; a field is `None` when its file
/// could not be read, and its metric is then left out.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<f64>,
    pub virtual_memory_bytes: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// This process, from `/proc`.
    pub fn read() -> ProcessStats {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let stat = stat.as_deref().and_then(parse_stat);
        let ticks = clock_ticks();
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_boot_time(&s));
        ProcessStats {
            cpu_seconds: stat.map(|s| (s.utime + s.stime) as f64 / ticks),
            resident_memory_bytes: stat.map(|s| s.rss_pages as f64 * page_size()),
            virtual_memory_bytes: stat.map(|s| s.vsize as f64),
            open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64),
            max_fds: std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|s| parse_max_open_files(&s)),
            start_time_seconds: match (stat, boot) {
                (Some(s), Some(boot)) => Some(boot as f64 + s.starttime as f64 / ticks),
                _ => None,
            },
        }
    }
}

/// The fields of `/proc/self/stat` used here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub utime: u64,
    pub stime: u64,
    pub starttime: u64,
    pub vsize: u64,
    pub rss_pages: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and
/// may itself hold spaces and parentheses: fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // rest starts at field 3 (state): field N is rest[N - 3].
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit of "Max open files" in `/proc/self/limits`.
pub fn parse_max_open_files(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.trim_start_matches("Max open files").split_whitespace().next()?;
    match soft {
        "unlimited" => Some(f64::INFINITY),
        n => n.parse().ok(),
    }
}

fn clock_ticks() -> f64 {
    sysconf_or(libc::_SC_CLK_TCK, 100.0)
}

fn page_size() -> f64 {
    sysconf_or(libc::_SC_PAGESIZE, 4096.0)
}

/// `sysconf(name)`, or `fallback` when the system does not say (-1).
fn sysconf_or(name: libc::c_int, fallback: f64) -> f64 {
    // SAFETY: sysconf has no preconditions; an unknown name returns -1.
    let value = unsafe { libc::sysconf(name) };
    if value > 0 {
        value as f64
    } else {
        fallback
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_stats(&ProcessStats::read(), encoder)
    }
}

/// Writes `stats`, each present figure as its metric.
pub fn encode_stats(stats: &ProcessStats, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if let Some(v) = stats.cpu_seconds {
        let metric = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(v).encode(metric)?;
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            stats.resident_memory_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            stats.virtual_memory_bytes,
        ),
        ("process_open_fds", "Number of open file descriptors.", stats.open_fds),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            stats.max_fds,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            stats.start_time_seconds,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(v) = value {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            crate::output::metrics::encode_number(metric, v)?;
        }
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit, as Go programs
/// (and so the Prometheus exporters) do at start: every connection is a
/// file, and at the common default of 1,024 a burst of connections that
/// the header timeout has not yet closed would leave none for scrapes.
#[cfg(unix)]
pub fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls get a valid pointer to an rlimit they fill or read.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max && {
            let before = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            let ok = libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0;
            if ok {
                tracing::debug!(from = before, to = limit.rlim_max, "raised the open files limit");
            }
            ok
        }
    };
    if !raised && limit.rlim_cur < 4096 {
        tracing::warn!(
            limit = limit.rlim_cur,
            "the open files limit is low and cannot be raised; connections beyond it wait"
        );
    }
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_is_read_after_the_command_name() {
        // A command name with spaces and a parenthesis, as the kernel writes it.
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                utime: 250,
                stime: 75,
                starttime: 123456,
                vsize: 987654321,
                rss_pages: 2048,
            }
        );
        assert_eq!(parse_stat("4242 (cut"), None);
    }

    #[test]
    fn boot_time_and_the_open_files_limit() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024.0));
    }

    /// This process, read for real: every figure present and plausible.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read_from_proc() {
        let stats = ProcessStats::read();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(stats.cpu_seconds.unwrap() >= 0.0);
        assert!(stats.resident_memory_bytes.unwrap() > 1e6, "{stats:?}");
        assert!(stats.virtual_memory_bytes.unwrap() >= stats.resident_memory_bytes.unwrap());
        assert!(stats.open_fds.unwrap() >= 3.0, "{stats:?}");
        assert!(stats.max_fds.unwrap() >= stats.open_fds.unwrap());
        let start = stats.start_time_seconds.unwrap();
        assert!(start <= now + 1.0 && start > now - 3600.0, "{start} vs {now}");
    }

    #[test]
    fn the_exposition_has_every_metric_with_its_type() {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Fixed(ProcessStats {
            cpu_seconds: Some(1.5),
            resident_memory_bytes: Some(2048.0),
            virtual_memory_bytes: Some(4096.0),
            open_fds: Some(7.0),
            max_fds: Some(1024.0),
            start_time_seconds: Some(1_700_000_000.25),
        })));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for expected in [
            "# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 1.5\n",
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2048\n",
            "process_virtual_memory_bytes 4096\n",
            "process_open_fds 7\n",
            "process_max_fds 1024\n",
            "process_start_time_seconds 1700000000.25\n",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
    }

    #[derive(Debug)]
    struct Fixed(ProcessStats);

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            encode_stats(&self.0, encoder)
        }
    }
}
