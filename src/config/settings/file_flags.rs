//! The file's keys that a flag also sets, read by that flag's own parser.
//! A key is the flag's name with `_` for `-` (`--aws.call-timeout` is
//! `aws.call_timeout`), so that a flag declared in `cli.rs` is a file key
//! with the same type, parser and bounds, and nothing is written here for it.

use std::any::TypeId;

use clap::{Arg, Args, Command, FromArgMatches};
use serde_norway::{Mapping, Value};

use super::least;
use super::yaml::{display, kind};
use crate::config::cli::{Flags, ServeFlags};

/// Flags that have no file key: where the file is, what the file cannot
/// change once running (logging), and what the file spells differently
/// (`metrics.key_series` is a list there, read with the other sections).
const NOT_IN_FILE: &[&str] = &[
    "config.file",
    "credential-report.file",
    "log.level",
    "log.format",
    "metrics.key-series",
];

/// A flag whose file key is not its name: the interval is a top-level key,
/// as it was before the flags had sections.
const RENAMED: &[(&str, &str)] = &[("refresh.interval", "refresh_interval")];

/// One file key and the flag it sets.
pub(super) struct FileFlag {
    /// `aws.call_timeout`
    pub path: String,
    arg: Arg,
}

impl FileFlag {
    /// The mapping the key sits in (`aws`), or `None` at the top level.
    pub fn section(&self) -> Option<&str> {
        self.path.split_once('.').map(|(section, _)| section)
    }

    /// The key's name inside its section (`call_timeout`).
    pub fn key(&self) -> &str {
        self.path.split_once('.').map_or(&self.path, |(_, key)| key)
    }

    fn long(&self) -> &str {
        self.arg.get_long().unwrap_or_default()
    }
}

/// Every flag with a file key, serve-only flags first, each in the order
/// `cli.rs` declares it.
pub(super) fn file_flags() -> Vec<FileFlag> {
    command()
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            if NOT_IN_FILE.contains(&long) || long.starts_with("web.") {
                return None;
            }
            let path = RENAMED
                .iter()
                .find(|(flag, _)| *flag == long)
                .map_or_else(|| long.replace('-', "_"), |(_, key)| key.to_string());
            Some(FileFlag { path, arg: arg.clone() })
        })
        .collect()
}

/// The flags as a command of their own, blind to the environment: a file
/// key is never overridden by a variable here, the merge decides that.
fn command() -> Command {
    let command = Command::new("file").no_binary_name(true);
    Flags::augment_args(ServeFlags::augment_args(command)).mut_args(|arg| arg.env(None::<&str>).global(false))
}

/// The command-line spelling of one file value, `--aws.call-timeout=30s`,
/// or the problem with it, worded as the file's other keys word theirs.
pub(super) fn argument(flag: &FileFlag, value: &Value) -> Result<String, String> {
    let parser = flag.arg.get_value_parser().type_id();
    let text = if [TypeId::of::<u32>(), TypeId::of::<usize>(), TypeId::of::<u64>()]
        .iter()
        .any(|t| parser == *t)
    {
        match value {
            Value::Number(n) if n.as_u64().is_some() => n.to_string(),
            other => {
                return Err(format!(
                    "expected a whole number of at least {}, found {}",
                    least(&flag.path),
                    display(other)
                ))
            }
        }
    } else if parser == TypeId::of::<bool>() {
        match value {
            Value::Bool(b) => b.to_string(),
            other => return Err(format!("expected true or false, found {}", display(other))),
        }
    } else if parser == TypeId::of::<f64>() {
        match value {
            Value::Number(n) => n.to_string(),
            other => return Err(format!("expected a number, found {}", display(other))),
        }
    } else {
        match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("expected a string, found {}", kind(other))),
        }
    };
    let names: Vec<String> = flag
        .arg
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_string())
        .collect();
    if !names.is_empty() && !names.contains(&text) {
        return Err(format!("{text:?} is not one of {}", names.join(", ")));
    }
    let argument = format!("--{}={text}", flag.long());
    // The flag's own parser decides, alone, so that each value's problem is
    // named apart.
    Command::new("file")
        .no_binary_name(true)
        .arg(flag.arg.clone().env(None::<&str>).global(false))
        .try_get_matches_from([&argument])
        .map_err(|e| {
            use std::error::Error as _;
            e.source().map_or_else(|| e.kind().to_string(), ToString::to_string)
        })?;
    Ok(argument)
}

/// The flags that the file's valid keys give, parsed together.
pub(super) fn parse(arguments: &[String]) -> Result<Flags, String> {
    let matches = command().try_get_matches_from(arguments).map_err(|e| e.to_string())?;
    let mut flags = Flags::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    flags.serve = ServeFlags::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    Ok(flags)
}

/// What a section's file keys are, for the message on an unknown one.
pub(super) fn keys_in(flags: &[FileFlag], section: Option<&str>) -> Vec<String> {
    flags
        .iter()
        .filter(|f| f.section() == section)
        .map(|f| f.key().to_string())
        .collect()
}

/// The value at a flag's key in its section's mapping.
pub(super) fn value_in<'a>(section: &'a Mapping, flag: &FileFlag) -> Option<&'a Value> {
    section.get(flag.key()).filter(|v| !v.is_null())
}
