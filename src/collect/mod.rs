//! Collection: reading the accounts' keys. AWS access ([`aws`]), the sources
//! that turn IAM answers or a report file into the key model ([`sources`]),
//! and the loop that refreshes every account and publishes a new snapshot
//! ([`refresh`]). Imports the domain, never the outputs.

pub mod aws;
pub mod file_watch;
pub mod refresh;
pub mod sources;
