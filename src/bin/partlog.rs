//! `partlog`: the command-line tool of the partlog storage engine.
//!
//! ```text
//! partlog produce DIR --records N --record-size B --batch R [--segment-bytes S] [--flush-every K]
//! partlog dump PATH [--records] [--json]
//! partlog verify DIR
//! ```
//!
//! * `produce` appends synthetic records to the log in `DIR` and reports the throughput.
//! * `dump` prints the batches of a `.log` segment (or of every segment of a directory), or the
//!   entries of a `.index` / `.timeindex` file, in the manner of Kafka's `kafka-dump-log`.
//! * `verify` checks every file of a log directory without modifying anything.
//!
//! Exit status: 0 on success, 1 when a check fails or an I/O error occurs, 2 on a usage error.
//!
//! The tool has no dependencies beyond the library: arguments are parsed by hand and JSON is
//! written by hand.

#[path = "partlog/args.rs"]
mod args;
#[path = "partlog/dump.rs"]
mod dump;
#[path = "partlog/files.rs"]
mod files;
#[path = "partlog/json.rs"]
mod json;
#[path = "partlog/produce.rs"]
mod produce;
#[path = "partlog/text.rs"]
mod text;
#[path = "partlog/verify.rs"]
mod verify;
#[path = "partlog/walk.rs"]
mod walk;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

/// The usage message, printed for `help` and after every usage error.
pub const USAGE: &str = "\
usage:
  partlog produce DIR --records N --record-size B --batch R [--segment-bytes S]
                      [--index-interval-bytes I] [--flush-every K]
      Append N synthetic records (B-byte values, keys \"key-<i>\") in batches of R records to
      the log in DIR (created if absent), then flush and close it, and report the throughput.
  partlog dump PATH [--records] [--json]
      Print the batches of a .log segment (or of every .log of a directory, in offset order),
      or the entries of a .index / .timeindex file. --records also prints every record;
      --json prints one JSON object per line. The walk of a file stops at its first invalid
      batch (reported with its position and the reason); the exit status is then 1.
  partlog verify DIR
      Check every segment, index and checkpoint of the log in DIR, read-only. Prints a summary
      and exits 0 if all is well; prints `file:position: problem` and exits 1 otherwise.
  partlog help
      Print this message.

Exit status: 0 success, 1 check failed or I/O error, 2 usage error.";

/// Why a command did not succeed.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong: exit status 2, with the usage message.
    Usage(String),
    /// The command failed (I/O error, bad data, library error): exit status 1.
    Failed(String),
    /// Writing to standard output failed.
    Output(io::Error),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
            CliError::Output(e) => write!(f, "cannot write the output: {e}"),
        }
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Output(e)
    }
}

/// What a command reports when it ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was fine: exit status 0.
    Success,
    /// The command ran, but found bad data (and said so): exit status 1.
    Problems,
}

fn run(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, CliError> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Err(CliError::Usage("missing command".into()));
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_str() {
        Some("produce") => produce::run(&rest, out),
        Some("dump") => dump::run(&rest, out),
        Some("verify") => verify::run(&rest, out, err),
        Some("help" | "-h" | "--help") => {
            writeln!(out, "{USAGE}")?;
            Ok(Outcome::Success)
        }
        _ => Err(CliError::Usage(format!(
            "unknown command {}",
            text::quote_os(&command)
        ))),
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let result = run(args, &mut out, &mut err);
    // Flush what the command printed before any error message, so the two stay in order.
    let flushed = out.flush();
    let result = match (result, flushed) {
        // A closed pipe (`partlog dump ... | head`) is the reader's choice, not a failure: the
        // command's outcome stands (problems it found still exit 1).
        (Ok(outcome), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(outcome),
        (Ok(_), Err(e)) => Err(CliError::Output(e)),
        (result, _) => result,
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        // The command stopped at the closed pipe before it had found any problem.
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => {
            let _ = writeln!(err, "partlog: {m}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(e) => {
            let _ = writeln!(err, "partlog: {e}");
            ExitCode::from(1)
        }
    }
}
