//! Tests of the root: the refresh task's supervision and the HTML report's
//! header context.

use super::*;

#[tokio::test]
async fn a_refresh_task_that_dies_stops_the_exporter() {
    let (_stop, stopped) = watch::channel(false);
    let refresh = tokio::spawn(async { panic!("overflow when adding duration to instant") });
    let result = supervise(futures::future::pending(), refresh, stopped).await;
    let err = result.unwrap_err();
    assert!(matches!(err, Error::RefreshStopped("it panicked")), "{err}");
    assert_eq!(err.exit_code(), 1);

    let (_stop, stopped) = watch::channel(false);
    let refresh = tokio::spawn(async {});
    let result = supervise(futures::future::pending(), refresh, stopped).await;
    assert!(matches!(result, Err(Error::RefreshStopped("it returned"))));
}

#[tokio::test]
async fn at_shutdown_the_server_finishes_whatever_the_refresh_task_does() {
    let (stop, stopped) = watch::channel(false);
    stop.send(true).unwrap();
    let refresh = tokio::spawn(async {});
    let server = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Ok(())
    };
    assert_eq!(supervise(server, refresh, stopped).await.unwrap(), 0);
}

#[test]
fn the_header_says_where_the_data_comes_from() {
    use crate::collect::sources::SourceKind;
    use crate::config::cli::Flags;
    let context = |flags: Flags| report_context(&Settings::from_parts(&flags, None).unwrap());
    let plain = context(Flags::default());
    assert_eq!(
        (plain.source.as_str(), plain.scope.as_str()),
        ("IAM API", "the account of the exporter's credentials")
    );
    let sharded = context(Flags {
        source: Some(SourceKind::CredentialReport),
        shard_index: Some(1),
        shard_count: Some(3),
        ..Flags::default()
    });
    assert_eq!(sharded.source, "IAM credential report");
    assert!(sharded
        .scope
        .ends_with("; this replica's shard only: shard.index 1 of shard.count 3"));
    let file = context(Flags {
        credential_report_file: Some("a&b.csv".into()),
        shard_count: Some(3),
        ..Flags::default()
    });
    assert_eq!(
        (file.source.as_str(), file.scope.as_str()),
        ("IAM credential report file a&b.csv", "the account of the report file")
    );
}
