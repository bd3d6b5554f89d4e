//! Hand-rolled argument parsing: positionals, `--name value`, `--name=value`, flags, and `--` to
//! end the options. Every mistake is a [`CliError::Usage`].

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::str::FromStr;

use crate::text::quote_os;
use crate::CliError;

/// The arguments of one command, split by a [`Spec`].
#[derive(Debug, Default)]
pub struct Parsed {
    /// Arguments that are not options, in order.
    pub positionals: Vec<OsString>,
    /// Values of the options given, by name.
    values: HashMap<&'static str, OsString>,
    /// The flags given.
    flags: Vec<&'static str>,
}

/// Which options a command accepts (names without the leading `--`).
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Options that take a value.
    pub values: &'static [&'static str],
    /// Options that take none.
    pub flags: &'static [&'static str],
}

fn usage(msg: String) -> CliError {
    CliError::Usage(msg)
}

impl Spec {
    /// Splits `args` into positionals, option values and flags.
    ///
    /// # Errors
    /// [`CliError::Usage`] for an unknown option, a repeated one, a missing value, or a value
    /// given to a flag.
    pub fn parse(&self, args: &[OsString]) -> Result<Parsed, CliError> {
        let mut parsed = Parsed::default();
        let mut it = args.iter();
        let mut options_done = false;
        while let Some(arg) = it.next() {
            let Some(s) = arg
                .to_str()
                .filter(|s| !options_done && s.starts_with('-') && s.len() > 1)
            else {
                parsed.positionals.push(arg.clone());
                continue;
            };
            if s == "--" {
                options_done = true;
                continue;
            }
            let Some(body) = s.strip_prefix("--") else {
                return Err(usage(format!("unknown option {}", quote_os(arg))));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(OsString::from(v))),
                None => (body, None),
            };
            if let Some(&known) = self.values.iter().find(|&&v| v == name) {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| usage(format!("option --{name} needs a value")))?,
                };
                if parsed.values.insert(known, value).is_some() {
                    return Err(usage(format!("option --{name} given twice")));
                }
            } else if let Some(&known) = self.flags.iter().find(|&&f| f == name) {
                if inline.is_some() {
                    return Err(usage(format!("option --{name} takes no value")));
                }
                if parsed.flags.contains(&known) {
                    return Err(usage(format!("option --{name} given twice")));
                }
                parsed.flags.push(known);
            } else {
                return Err(usage(format!("unknown option {}", quote_os(arg))));
            }
        }
        Ok(parsed)
    }
}

impl Parsed {
    /// True if the flag `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    /// The value of option `name`, parsed; `None` if it was not given. Underscores between
    /// digits are allowed in numbers (`100_000`).
    ///
    /// # Errors
    /// [`CliError::Usage`] if the value does not parse.
    pub fn value<T: FromStr>(&self, name: &str) -> Result<Option<T>, CliError> {
        let Some(raw) = self.values.get(name) else {
            return Ok(None);
        };
        let bad = || usage(format!("invalid value {} for --{name}", quote_os(raw)));
        let s = raw.to_str().ok_or_else(bad)?;
        let cleaned: String = s.chars().filter(|&c| c != '_').collect();
        if cleaned.is_empty() {
            return Err(bad());
        }
        cleaned.parse().map(Some).map_err(|_| bad())
    }

    /// The value of the required option `name`, parsed.
    ///
    /// # Errors
    /// [`CliError::Usage`] if it is missing or does not parse.
    pub fn required<T: FromStr>(&self, name: &str) -> Result<T, CliError> {
        self.value(name)?
            .ok_or_else(|| usage(format!("missing required option --{name}")))
    }

    /// The single positional argument, as a path, named `what` in error messages.
    ///
    /// # Errors
    /// [`CliError::Usage`] unless there is exactly one positional.
    pub fn one_path(&self, what: &str) -> Result<PathBuf, CliError> {
        match &self.positionals[..] {
            [p] if !p.is_empty() => Ok(PathBuf::from(p)),
            [] | [_] => Err(usage(format!("missing {what}"))),
            [_, extra, ..] => Err(usage(format!("unexpected argument {}", quote_os(extra)))),
        }
    }
}

/// True if any of `args` asks for help (`-h`, `--help`).
pub fn is_help(args: &[OsString]) -> bool {
    args.iter()
        .any(|a| a == OsStr::new("-h") || a == OsStr::new("--help"))
}
