//! The fast path against the reference renderer on random
//! snapshots: every label setting and key series set, both formats, plain
//! and gzip, sent a slice at a time, at several instants of one snapshot so
//! that what the fast path keeps between scrapes is checked too. A failure
//! prints the smallest case proptest found and the seed that reproduces it.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

use crate::domain::disclosure::{KeyIdLabel, LabelSettings};
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::key::{AccessKey, AccountData, KeyStatus, Privilege, User, ROOT_USER};
use crate::domain::policy::Policy;
use crate::domain::snapshot::{Outcome, Snapshot, SnapshotStore};
use crate::output::key_series::{KeySeries, KeySeriesSet};
use crate::output::metrics::{BuildInfo, Format, Metrics, Slices};

/// Cases per run: about five seconds of a debug build.
const CASES: u32 = 300;

thread_local! {
    /// The instant the case's metrics render at; a test runs its cases on
    /// one thread, and the assessor's clock is a plain function.
    static NOW: Cell<DateTime<Utc>> = Cell::new(start());
}

fn clock() -> DateTime<Utc> {
    NOW.with(Cell::get)
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap()
}

/// Label values that the encoders escape (`\`, `"`, a line feed) or that
/// look like the syntax around them.
const ODD: &str = "[a-z0-9 _.@/={},\"\\\\\n\t\r#é名-]{0,8}";
/// Tag keys: some sanitize to the same label name (`a.b`, `a-b`).
const TAG_KEYS: [&str; 5] = ["team", "cost-center", "a.b", "a-b", "Name"];

#[derive(Debug, Clone)]
struct Case {
    accounts: Vec<AccountCase>,
    user_tags: Vec<String>,
    access_key_id: KeyIdLabel,
    series: Vec<KeySeries>,
    unused_more_than: bool,
    /// Milliseconds after [`start`] of the first scrape, then between scrapes.
    steps: Vec<i64>,
    /// Per scrape, the order of the four bodies (format, gzip) asked for,
    /// which decides what each cache is first filled by.
    orders: Vec<[usize; 4]>,
    slice: usize,
    refresh_errors: Vec<(usize, usize)>,
}

#[derive(Debug, Clone)]
struct AccountCase {
    data: AccountData,
    /// Read once, or read and then failed (its data kept), or never read.
    fate: Fate,
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Up,
    Down,
    NeverRead,
}

fn tag_values() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(TAG_KEYS.to_vec()).prop_map(String::from),
        ODD,
        0..3,
    )
}

/// Seconds before [`start`]: mostly within six years, some in the future
/// (a clock behind the source's), some before 1970 or after 2248, where
/// the fast path writes numbers as dtoa does instead of as integers.
fn seconds_ago() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 0i64..6 * 365 * 86_400,
        1 => -5 * 86_400i64..0,
        1 => prop::sample::select(vec![60 * 365 * 86_400i64, -300 * 365 * 86_400]),
    ]
}

fn key_of(user: Arc<str>, position: u8) -> impl Strategy<Value = AccessKey> {
    let id = prop_oneof![
        "AKIA[A-Z0-9]{16}".prop_map(Some),
        "[A-Z\"]{0,3}".prop_map(Some),
        Just(None)
    ];
    (
        id,
        any::<bool>(),
        seconds_ago(),
        prop::option::weighted(0.7, 0i64..400 * 86_400),
        prop::option::of(ODD),
        prop::option::of(ODD),
    )
        .prop_map(move |(id, active, created, unused, service, region)| {
            let created = start() - chrono::Duration::seconds(created);
            let key = AccessKey::new(user.clone(), created)
                .position(position)
                .status(if active { KeyStatus::Active } else { KeyStatus::Inactive })
                .last_used(unused.map(|unused| (start() - chrono::Duration::seconds(unused)).max(created)))
                .last_used_in(service.map(Arc::from), region.map(Arc::from));
            match id {
                Some(id) => key.id(id),
                None => key,
            }
        })
}

/// A user with its path and tags, and its keys (none, one or two).
fn user() -> impl Strategy<Value = (User, Vec<AccessKey>)> {
    (
        ODD,
        prop::sample::select(vec!["/", "/ci/", "/a \"b\"/"]),
        tag_values(),
        0usize..3,
        prop::option::of((any::<bool>(), any::<bool>())),
    )
        .prop_flat_map(|(name, path, tags, keys, privilege)| {
            let name: Arc<str> = name.into();
            let privilege = privilege.map(|(admin, quarantined)| Privilege { admin, quarantined });
            let user = User::new(name.clone(), path).tags(tags).privilege(privilege);
            let keys: Vec<_> = (1..=keys as u8)
                .map(|position| key_of(name.clone(), position).prop_map(move |k| k.privilege(privilege)))
                .collect();
            (Just(user), keys)
        })
}

fn account() -> impl Strategy<Value = AccountCase> {
    let root = prop::collection::vec(key_of(ROOT_USER.into(), 1), 0..2);
    (
        "[0-9]{12}",
        ODD,
        prop::collection::vec(user(), 0..5),
        root,
        any::<bool>(),
        prop::option::of(0i64..86_400),
        prop::option::of(0u64..5),
        prop_oneof![6 => Just(Fate::Up), 1 => Just(Fate::Down), 1 => Just(Fate::NeverRead)],
    )
        .prop_map(|(id, name, users, root, root_present, generated, skipped, fate)| {
            let mut keys: Vec<AccessKey> = users.iter().flat_map(|(_, keys)| keys.clone()).collect();
            keys.extend(root);
            // As the sources sort them: by user, then position.
            keys.sort_by(|a, b| (&a.user, a.position).cmp(&(&b.user, b.position)));
            let privileges_read = users.iter().any(|(user, _)| user.privilege.is_some());
            AccountCase {
                data: AccountData {
                    account_id: id,
                    account_name: name,
                    users: users.into_iter().map(|(user, _)| user).collect(),
                    keys,
                    root_access_key_present: root_present,
                    credential_report_generated: generated.map(|s| start() - chrono::Duration::seconds(s)),
                    credential_report_skipped_rows: skipped,
                    credential_report_warnings: Vec::new(),
                    privileges_read,
                },
                fate,
            }
        })
}

fn case() -> impl Strategy<Value = Case> {
    let tags = prop::sample::subsequence([&TAG_KEYS[..], &["absent"]].concat(), 0..4)
        .prop_map(|tags| tags.into_iter().map(String::from).collect());
    let key_id = prop::sample::select(vec![KeyIdLabel::Full, KeyIdLabel::Last4, KeyIdLabel::None]);
    let series = prop::sample::subsequence(KeySeries::ALL.to_vec(), 0..=KeySeries::ALL.len());
    // Within a second, within a day, past a bucket's or the policy's bound.
    let step = prop_oneof![Just(0i64), 0i64..1_000, 0i64..86_400_000, 0i64..200 * 86_400_000];
    let order = Just([0usize, 1, 2, 3]).prop_shuffle();
    (
        prop::collection::vec(account(), 0..4),
        tags,
        key_id,
        series,
        any::<bool>(),
        prop::collection::vec(step, 1..4),
        prop::collection::vec(order, 3),
        prop_oneof![1usize..64, 64usize..70_000],
        prop::collection::vec((0usize..4, 0usize..ErrorReason::ALL.len()), 0..3),
    )
        .prop_map(
            |(accounts, user_tags, access_key_id, series, unused_more_than, steps, orders, slice, refresh_errors)| {
                Case {
                    accounts,
                    user_tags,
                    access_key_id,
                    series,
                    unused_more_than,
                    steps,
                    orders,
                    slice,
                    refresh_errors,
                }
            },
        )
}

/// The snapshot of a case: every account's outcomes, in order.
fn snapshot(case: &Case) -> Snapshot {
    let failed = |id: &str| Outcome {
        previous_id: Some(id.to_string()),
        result: Err(SourceError::new(ErrorReason::AccessDenied, "denied")),
        finished: start() - chrono::Duration::seconds(30),
        duration: Duration::from_millis(250),
    };
    let mut outcomes = Vec::new();
    for account in &case.accounts {
        let id = &account.data.account_id;
        if !matches!(account.fate, Fate::NeverRead) {
            outcomes.push(Outcome {
                previous_id: None,
                result: Ok(account.data.clone()),
                finished: start() - chrono::Duration::milliseconds(61_500),
                duration: Duration::from_millis(1_234),
            });
        }
        if !matches!(account.fate, Fate::Up) {
            outcomes.push(failed(id));
        }
    }
    Snapshot::default().with_outcomes(outcomes)
}

fn metrics(case: &Case) -> crate::Telemetry {
    let store = Arc::new(SnapshotStore::default());
    store.publish(snapshot(case));
    let policy = Policy {
        unused_more_than: case.unused_more_than.then_some(Duration::from_secs(90 * 86_400)),
        ..Policy::default()
    };
    let labels = LabelSettings {
        user_tags: case.user_tags.clone(),
        access_key_id: case.access_key_id,
    };
    let build = BuildInfo {
        version: "1.2.3",
        revision: "a\"b",
        rustc_version: "1.95.0",
    };
    let series = KeySeriesSet::of(&case.series);
    let telemetry = crate::Telemetry::assemble(store, policy, labels, series, build, clock, false);
    for &(account, reason) in &case.refresh_errors {
        let id = case.accounts.get(account).map_or("", |a| a.data.account_id.as_str());
        telemetry.refresh.count(id, ErrorReason::ALL[reason]);
    }
    telemetry
}

/// A body as the server sends it: a slice at a time, as long as it says.
fn sent(metrics: &Metrics, format: Format, gzip: bool, slice: usize) -> Result<Vec<u8>, TestCaseError> {
    let body = metrics.body(format, gzip);
    let mut out = Vec::new();
    for part in Slices::new(&body, slice) {
        out.extend_from_slice(&part);
    }
    prop_assert_eq!(
        out.len(),
        body.len(),
        "the announced length, {:?} gzip {}",
        format,
        gzip
    );
    if !gzip {
        return Ok(out);
    }
    // A reader of one gzip member only: the body is one member.
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&out[..])
        .read_to_end(&mut plain)
        .map_err(|e| TestCaseError::fail(format!("not gzip: {e}")))?;
    Ok(plain)
}

fn check(case: Case) -> Result<(), TestCaseError> {
    let telemetry = metrics(&case);
    let m = &telemetry.metrics;
    let bodies = [
        (Format::Text, false),
        (Format::Text, true),
        (Format::OpenMetrics, false),
        (Format::OpenMetrics, true),
    ];
    let mut now = start();
    for (scrape, step) in case.steps.iter().enumerate() {
        now += chrono::Duration::milliseconds(*step);
        NOW.with(|clock| clock.set(now));
        for &i in &case.orders[scrape] {
            let (format, gzip) = bodies[i];
            let expected = super::render(m, m.snapshot.assessor.current().0, now, format);
            let ours = String::from_utf8(sent(m, format, gzip, case.slice)?)
                .map_err(|e| TestCaseError::fail(format!("not UTF-8: {e}")))?;
            if ours != expected {
                let line = ours.lines().zip(expected.lines()).position(|(a, b)| a != b);
                let at = |text: &str| line.and_then(|l| text.lines().nth(l)).unwrap_or("").to_string();
                return Err(TestCaseError::fail(format!(
                    "scrape {scrape} at {now}, {format:?}, gzip {gzip}: first difference at line {line:?}\n  fast path: {:?}\n  reference: {:?}",
                    at(&ours),
                    at(&expected),
                )));
            }
        }
    }
    Ok(())
}

/// `PROPTEST_RNG_SEED=<seed>` reruns the cases of a failed run.
#[test]
fn the_fast_path_writes_what_the_reference_writes() {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(failure) = runner.run(&case(), check) {
        panic!("{failure}\nrerun with PROPTEST_RNG_SEED={seed}");
    }
}
