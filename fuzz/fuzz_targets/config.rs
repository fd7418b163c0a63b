//! Any bytes as a config file: validation returns a config or a list of
//! problems, each naming its field, and never panics.
#![no_main]

use aws_iam_key_exporter::config::parse_config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = parse_config(text) {
        assert!(!problems.is_empty());
        assert!(problems.iter().all(|p| p.contains(':')), "{problems:?}");
    }
});
