//! The domain: what the exporter knows and decides, free of AWS, HTTP and
//! configuration files. The key model ([`key`]) and why an account could not
//! be read ([`failure`]); the accounts to read ([`accounts`]); the rules of
//! risk ([`policy`]) and their application at a moment ([`assess`]); the data
//! served, swapped whole ([`snapshot`]); what a user may do and whether AWS
//! quarantined it ([`privilege`]); how key ids and tags may be shown
//! ([`disclosure`]). Imports nothing outside this folder.

pub mod accounts;
pub mod assess;
pub mod disclosure;
pub mod failure;
pub mod ids;
pub mod key;
pub mod policy;
pub mod privilege;
pub mod snapshot;
