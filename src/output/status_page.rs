//! The landing page `/`: how things are, where an operator looks first (as
//! Prometheus' targets page). Each account with its state, last success,
//! keys, high-risk keys and the error of its latest refresh; the source, the
//! refresh interval and the next refresh; links to every endpoint. Plain
//! HTML, no external assets (a Content-Security-Policy says so), every value
//! escaped. A pure function of the snapshot, a small context and the time.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::assess::{AccountSummary, Assessed};
use crate::domain::snapshot::AccountState;
use crate::output::metrics::BuildInfo;
use crate::output::report::html::{csp_hash, escape};
use crate::output::report::timestamp;

/// What the page says besides the snapshot.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub build: BuildInfo,
    pub telemetry_path: &'a str,
    /// Where the data comes from and which accounts, as the HTML report says.
    pub source: &'a str,
    pub scope: &'a str,
    pub refresh_interval: Duration,
    /// What `/-/ready` says: data to serve, or why not.
    pub readiness: Result<(), &'a str>,
}

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; color: #1f2328; margin: 24px; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
td.num { text-align: right; }
.up { color: #1a7f37; font-weight: 600; }
.down { color: #a40e26; font-weight: 600; }
";

/// The whole page, of the assessed model (which says which keys are high
/// risk) and its snapshot (which says how each account's refreshes went).
pub fn render(assessed: &Assessed, context: &Context) -> String {
    let snapshot = &*assessed.snapshot;
    let now = assessed.now;
    let mut out = String::with_capacity(2048 + snapshot.accounts.len() * 400);
    let csp = format!(
        "default-src 'none'; style-src {}; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE)
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
<title>AWS IAM key exporter</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
<h1>AWS IAM key exporter</h1>\n\
<p>Version {} (revision {}). <a href=\"{}\">Metrics</a>",
        escape(context.build.version),
        escape(context.build.revision),
        escape(context.telemetry_path),
    );
    for endpoint in crate::output::endpoints::LINKED {
        let _ = write!(out, " | <a href=\"{}\">{}</a>", endpoint.path, endpoint.link);
    }
    out.push_str("</p>\n");
    let up = snapshot.accounts.values().filter(|s| s.up).count();
    let next = snapshot
        .accounts
        .values()
        .filter_map(|s| next_refresh(s, context.refresh_interval))
        .min();
    let _ = write!(
        out,
        "<h2>Status</h2>\n<dl>\n\
<dt>Source</dt><dd>{}</dd>\n<dt>Accounts read</dt><dd>{}</dd>\n\
<dt>Refresh interval</dt><dd>{}</dd>\n<dt>Ready</dt><dd>{}</dd>\n\
<dt>Accounts up</dt><dd>{up} of {}</dd>\n<dt>Next refresh</dt><dd>{}</dd>\n<dt>Now</dt><dd>{}</dd>\n</dl>\n",
        escape(context.source),
        escape(context.scope),
        humantime::format_duration(context.refresh_interval),
        match context.readiness {
            Ok(()) => "yes".to_string(),
            Err(why) => format!("no: {}", escape(why)),
        },
        snapshot.accounts.len(),
        match next {
            Some(at) => format!("about {}", moment(at, now)),
            None => "when the first refresh has finished".to_string(),
        },
        timestamp(now),
    );
    out.push_str(
        "<h2>Accounts</h2>\n<table>\n<thead><tr><th>Account</th><th>Name</th><th>State</th>\
<th>Last success</th><th>Keys</th><th>High-risk keys</th><th>Error of the latest refresh</th></tr></thead>\n<tbody>\n",
    );
    if snapshot.accounts.is_empty() {
        out.push_str("<tr><td colspan=\"7\">None yet: the first refresh has not finished.</td></tr>\n");
    }
    for (id, state) in &snapshot.accounts {
        let summary = assessed.accounts.iter().find(|a| &a.id == id).map(|a| &a.summary);
        account_row(&mut out, id, state, summary, now);
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}

fn account_row(out: &mut String, id: &str, state: &AccountState, summary: Option<&AccountSummary>, now: DateTime<Utc>) {
    let id = if id.is_empty() {
        "unknown (failed before its id was learned)".to_string()
    } else {
        escape(id)
    };
    let data = state.data.as_deref();
    let (keys, high_risk) = match summary {
        Some(summary) => (summary.keys.to_string(), summary.high_risk_keys.to_string()),
        None => ("-".to_string(), "-".to_string()),
    };
    let error = match (&state.last_error, state.next_try) {
        (Some(e), Some(at)) => format!("{} (next try about {})", escape(&e.describe()), moment(at, now)),
        (Some(e), None) => escape(&e.describe()),
        (None, _) => String::new(),
    };
    let (class, word) = if state.up { ("up", "up") } else { ("down", "down") };
    let _ = writeln!(
        out,
        "<tr><td>{id}</td><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td>\
<td class=\"num\">{keys}</td><td class=\"num\">{high_risk}</td><td>{error}</td></tr>",
        escape(data.map(|d| d.account_name.as_str()).unwrap_or("")),
        state
            .last_success
            .map(|t| moment(t, now))
            .unwrap_or_else(|| "never".into()),
    );
}

/// When the account is next due: the retry of a failed read, else an
/// interval after its latest refresh started. About, as the schedule keeps
/// each account's phase in the interval.
fn next_refresh(state: &AccountState, interval: Duration) -> Option<DateTime<Utc>> {
    if let Some(at) = state.next_try {
        return Some(at);
    }
    let finished = state.last_refresh?;
    let started = finished - chrono::Duration::from_std(state.last_duration).ok()?;
    Some(started + chrono::Duration::from_std(interval).ok()?)
}

/// `2026-11-28T00:00:00Z (5m ago)` or `(in 5m)`.
fn moment(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    let relative = if seconds >= 0 {
        format!("in {}", rough(seconds.unsigned_abs()))
    } else {
        format!("{} ago", rough(seconds.unsigned_abs()))
    };
    format!("{} ({relative})", timestamp(at))
}

/// A duration to the largest unit that keeps two or more of it.
fn rough(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::assess::assess;
    use crate::domain::failure::{ErrorReason, SourceError};
    use crate::domain::key::{AccessKey, AccountData};
    use crate::domain::policy::Policy;
    use crate::domain::snapshot::{Outcome, Snapshot};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn key(user: &str, age_days: i64, used: bool) -> AccessKey {
        AccessKey::new(user, now() - chrono::Duration::days(age_days))
            .last_used(used.then(|| now() - chrono::Duration::days(1)))
    }

    /// A healthy account (one key not rotated), an account whose latest
    /// refresh failed after a success, one never read and tried again soon;
    /// names and errors carry markup, which must come out as text.
    fn snapshot() -> Snapshot {
        let healthy = AccountData {
            account_id: "111122223333".into(),
            account_name: "prod <&> \"main\"".into(),
            keys: vec![key("alice", 400, true), key("bob", 10, true)],
            ..AccountData::default()
        };
        let at = |minutes: i64| now() - chrono::Duration::minutes(minutes);
        let outcome = |id: Option<&str>, result, minutes| Outcome {
            previous_id: id.map(str::to_string),
            result,
            finished: at(minutes),
            duration: Duration::from_secs(60),
        };
        let was_up = AccountData {
            account_id: "222233334444".into(),
            account_name: "staging".into(),
            keys: vec![key("carol", 3, false)],
            ..AccountData::default()
        };
        let denied = SourceError::new(
            ErrorReason::AccessDenied,
            "AssumeRole of <arn:aws:iam::222233334444:role/X> denied",
        );
        let never = SourceError::new(ErrorReason::Network, "timed out");
        Snapshot::default()
            .with_outcomes([outcome(None, Ok(healthy), 10)])
            .with_outcomes([outcome(None, Ok(was_up), 200)])
            .with_outcomes([outcome(Some("222233334444"), Err(denied), 5)])
            .with_outcomes([outcome(Some("333344445555"), Err(never), 20)])
            .with_next_try("333344445555", now() + chrono::Duration::minutes(2))
    }

    fn context() -> Context<'static> {
        Context {
            build: BuildInfo {
                version: "1.2.3",
                revision: "abc<def>",
                rustc_version: "1.85.0",
            },
            telemetry_path: "/custom?a=1&b=2",
            source: "IAM API",
            scope: "the accounts of the organization, through role IAMKeyExporter",
            refresh_interval: Duration::from_secs(1800),
            readiness: Ok(()),
        }
    }

    #[test]
    fn the_page_of_a_fixed_snapshot() {
        let assessed = assess(Arc::new(snapshot()), &Policy::default(), now());
        let page = render(&assessed, &context());
        let csp = csp_hash(STYLE);
        let expected = format!(
            "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src {csp}; base-uri 'none'; form-action 'none'\">
<title>AWS IAM key exporter</title>
<style>{STYLE}</style>
</head>
<body>
<h1>AWS IAM key exporter</h1>
<p>Version 1.2.3 (revision abc&lt;def&gt;). <a href=\"/custom?a=1&amp;b=2\">Metrics</a> | <a href=\"/report\">Report</a> | <a href=\"/-/healthy\">Health</a> | <a href=\"/-/ready\">Readiness</a></p>
<h2>Status</h2>
<dl>
<dt>Source</dt><dd>IAM API</dd>
<dt>Accounts read</dt><dd>the accounts of the organization, through role IAMKeyExporter</dd>
<dt>Refresh interval</dt><dd>30m</dd>
<dt>Ready</dt><dd>yes</dd>
<dt>Accounts up</dt><dd>1 of 3</dd>
<dt>Next refresh</dt><dd>about 2026-11-28T12:02:00Z (in 2m)</dd>
<dt>Now</dt><dd>2026-11-28T12:00:00Z</dd>
</dl>
<h2>Accounts</h2>
<table>
<thead><tr><th>Account</th><th>Name</th><th>State</th><th>Last success</th><th>Keys</th><th>High-risk keys</th><th>Error of the latest refresh</th></tr></thead>
<tbody>
<tr><td>111122223333</td><td>prod &lt;&amp;&gt; &quot;main&quot;</td><td class=\"up\">up</td><td>2026-11-28T11:50:00Z (10m ago)</td><td class=\"num\">2</td><td class=\"num\">1</td><td></td></tr>
<tr><td>222233334444</td><td>staging</td><td class=\"down\">down</td><td>2026-11-28T08:40:00Z (3h ago)</td><td class=\"num\">1</td><td class=\"num\">0</td><td>access denied: AssumeRole of &lt;arn:aws:iam::222233334444:role/X&gt; denied</td></tr>
<tr><td>333344445555</td><td></td><td class=\"down\">down</td><td>never</td><td class=\"num\">-</td><td class=\"num\">-</td><td>network error: timed out (next try about 2026-11-28T12:02:00Z (in 2m))</td></tr>
</tbody>
</table>
</body>
</html>
"
        );
        assert_eq!(page, expected);
    }

    #[test]
    fn before_the_first_refresh_the_page_says_so() {
        let assessed = assess(Arc::new(Snapshot::default()), &Policy::default(), now());
        let page = render(
            &assessed,
            &Context {
                readiness: Err("the first refresh has not finished"),
                ..context()
            },
        );
        assert!(page.contains("<dt>Ready</dt><dd>no: the first refresh has not finished</dd>"));
        assert!(page.contains("<dt>Next refresh</dt><dd>when the first refresh has finished</dd>"));
        assert!(page.contains("<td colspan=\"7\">None yet: the first refresh has not finished.</td>"));
    }

    #[test]
    fn rough_durations_keep_two_or_more_of_their_unit() {
        assert_eq!(rough(119), "119s");
        assert_eq!(rough(120), "2m");
        assert_eq!(rough(7199), "119m");
        assert_eq!(rough(7200), "2h");
        assert_eq!(rough(2 * 86_400), "2d");
    }
}
