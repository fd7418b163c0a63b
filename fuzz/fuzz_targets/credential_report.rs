//! Any bytes as a credential report: the parser returns data or an error
//! that names a line, never panics, and what it returns is consistent.
#![no_main]

use aws_iam_key_exporter::collect::sources::report_csv::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(account) => {
            let mut series = std::collections::BTreeSet::new();
            for key in &account.keys {
                // Root's keys are keys; root is no IAM user.
                assert!(
                    key.is_root() || account.users.iter().any(|u| u.name == key.user),
                    "a key without its user"
                );
                assert!(
                    key.position == 1 || key.position == 2,
                    "a key outside the report's two columns"
                );
                assert!(series.insert((&key.user, key.position)), "a key series twice");
            }
        }
        Err(e) => assert!(e.line >= 1),
    }
});
