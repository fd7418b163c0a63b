//! Rendering `/metrics` from a snapshot of 1,000, 10,000 and 100,000 keys, in
//! both exposition formats. Run with `cargo bench --bench render`.

use std::sync::Arc;
use std::time::Duration;

use aws_iam_key_exporter::domain::disclosure::LabelSettings;
use aws_iam_key_exporter::domain::key::{AccessKey, AccountData, KeyStatus, User};
use aws_iam_key_exporter::domain::policy::Policy;
use aws_iam_key_exporter::domain::snapshot::{Outcome, Snapshot, SnapshotStore};
use aws_iam_key_exporter::output::metrics::{BuildInfo, Format, Metrics};
use aws_iam_key_exporter::Telemetry;
use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap()
}

/// `keys` keys over `keys / 2` users in 10 accounts, ages and last uses spread
/// over every bucket, a fifth never used, a tenth inactive.
pub fn metrics_with_keys(keys: usize) -> Arc<Metrics> {
    let accounts = 10;
    let mut outcomes = Vec::new();
    for a in 0..accounts {
        let account_id = format!("{:012}", 100_000_000_000u64 + a as u64);
        let mut data = AccountData {
            account_id: account_id.clone(),
            account_name: format!("account-{a}"),
            ..AccountData::default()
        };
        let per_account = keys / accounts;
        for i in 0..per_account.div_ceil(2) {
            let user: Arc<str> = Arc::from(format!("user-{a}-{i:06}@example.com"));
            data.users.push(User::new(user.clone(), "/engineering/"));
            for position in 1..=2u8 {
                if data.keys.len() == per_account {
                    break;
                }
                let n = data.keys.len() as i64;
                let used = n % 5 != 0;
                data.keys.push(
                    AccessKey::new(user.clone(), now() - chrono::Duration::days(n % 800))
                        .position(position)
                        .id(format!("AKIA{:016}", n + a as i64 * 1_000_000))
                        .status(if n % 10 == 0 {
                            KeyStatus::Inactive
                        } else {
                            KeyStatus::Active
                        })
                        .last_used(used.then(|| now() - chrono::Duration::days(n % 40)))
                        .last_used_in(used.then(|| "s3".into()), used.then(|| "eu-west-1".into())),
                );
            }
        }
        outcomes.push(Outcome {
            previous_id: None,
            result: Ok(data),
            finished: now(),
            duration: Duration::from_secs(1),
        });
    }
    let store = Arc::new(SnapshotStore::default());
    store.publish(Snapshot::default().with_outcomes(outcomes));
    Telemetry::with_clock(
        store,
        Policy::default(),
        LabelSettings::default(),
        BuildInfo::CURRENT,
        now,
    )
    .metrics
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    for keys in [1_000, 10_000, 100_000] {
        let metrics = metrics_with_keys(keys);
        group.throughput(Throughput::Elements(keys as u64));
        for (name, format) in [("text", Format::Text), ("openmetrics", Format::OpenMetrics)] {
            group.bench_with_input(BenchmarkId::new(name, keys), &metrics, |b, m| {
                b.iter(|| m.render(format).len())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
