//! Configuration, at the edge: the command line ([`cli`]), the YAML file
//! (`settings::yaml`), both merged and checked into [`settings::Settings`], and
//! logging set up from them ([`logging`]). Every other layer receives plain
//! settings and never reads a flag or a file.

pub mod cli;
pub mod logging;
pub mod settings;
