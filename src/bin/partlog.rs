//! `partlog`: the command-line tool of the partlog storage engine.
//!
//! ```text
//! partlog produce DIR --records N --record-size B --batch R [--segment-bytes S] [--flush-every K]
//! partlog dump PATH [--records] [--json]
//! partlog verify DIR
//! partlog topic create|describe|delete|list DATA ...
//! partlog produce-topic DATA --topic T --file F|- [--csv] [--key-column C] [--timestamp-column C]
//! partlog consume DATA --topic T [--group G] [--from-beginning | --partition P --offset N]
//! partlog groups DATA [--group G]
//! ```
//!
//! * `produce` appends synthetic records to the log in `DIR` and reports the throughput.
//! * `dump` prints the batches of a `.log` segment (or of every segment of a directory), or the
//!   entries of a `.index` / `.timeindex` file, in the manner of Kafka's `kafka-dump-log`.
//! * `verify` checks every file of a log directory without modifying anything.
//! * `topic`, `produce-topic`, `consume`, `groups`: topics and consumer groups of a data
//!   directory, in the manner of Kafka's `kafka-topics.sh`, `kafka-console-producer.sh`,
//!   `kafka-console-consumer.sh` and `kafka-consumer-groups.sh`.
//!
//! Exit status: 0 on success, 1 when a check fails or an I/O error occurs, 2 on a usage error.
//!
//! Arguments are parsed by `clap` (derive) and JSON is written by `serde_json`: both are
//! optional dependencies of the library, enabled only by the `cli` feature.

#[path = "partlog/consume.rs"]
mod consume;
#[path = "partlog/dump.rs"]
mod dump;
#[path = "partlog/files.rs"]
mod files;
#[path = "partlog/groups.rs"]
mod groups;
#[path = "partlog/produce.rs"]
mod produce;
#[path = "partlog/produce_topic.rs"]
mod produce_topic;
#[path = "partlog/text.rs"]
mod text;
#[path = "partlog/topic.rs"]
mod topic;
#[path = "partlog/verify.rs"]
mod verify;
#[path = "partlog/walk.rs"]
mod walk;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

/// The synopsis of every command, shown in `partlog help` and at the top of usage errors.
const SYNOPSIS: &str = "\
partlog produce DIR --records N --record-size B --batch R [--segment-bytes S]
                      [--index-interval-bytes I] [--flush-every K]
       partlog dump PATH [--records] [--json]
       partlog verify DIR
       partlog topic create DATA --topic T --partitions N
       partlog topic describe DATA [--topic T] [--json]
       partlog topic delete DATA --topic T
       partlog topic list DATA
       partlog produce-topic DATA --topic T --file F|- [--csv] [--key-column C]
                      [--timestamp-column C] [--skip-header]
       partlog consume DATA --topic T [--group G] [--from-beginning | --partition P --offset N]
                      [--max N] [--json]
       partlog groups DATA [--group G] [--json]
       partlog help [COMMAND]";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "partlog",
    version,
    about = "The command-line tool of the partlog storage engine: Kafka-style partition logs, \
             topics and consumer groups.",
    override_usage = SYNOPSIS,
    after_help = "Exit status: 0 success, 1 check failed or I/O error, 2 usage error.",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Append synthetic records to a single log and report the throughput.
    Produce(produce::Args),
    /// Print the batches of a .log segment (or of every .log of a directory), or the entries of
    /// a .index / .timeindex file.
    Dump(dump::Args),
    /// Check every segment, index and checkpoint of a log directory, read-only.
    Verify(verify::Args),
    /// Create, describe, delete or list the topics of a data directory (kafka-topics.sh).
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Produce the lines of a CSV or text file (or stdin) to a topic
    /// (kafka-console-producer.sh).
    ProduceTopic(produce_topic::Args),
    /// Consume a topic as a group member or from an offset (kafka-console-consumer.sh).
    Consume(consume::Args),
    /// List consumer groups, their committed offsets and lag (kafka-consumer-groups.sh).
    Groups(groups::Args),
}

/// Why a command did not succeed.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong (found after parsing): exit status 2, with the usage message.
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

/// Parses a count: an unsigned integer, with underscores allowed between digits (`100_000`).
pub fn parse_count<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    if cleaned.is_empty() || cleaned.starts_with(['-', '+']) {
        return Err(format!("{s:?} is not a non-negative integer"));
    }
    cleaned
        .parse()
        .map_err(|_| format!("{s:?} is not a non-negative integer in range"))
}

fn run(command: Command, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, CliError> {
    match command {
        Command::Produce(a) => produce::run(&a, out),
        Command::Dump(a) => dump::run(&a, out),
        Command::Verify(a) => verify::run(&a, out, err),
        Command::Topic(c) => topic::run(&c, out),
        Command::ProduceTopic(a) => produce_topic::run(&a, out, err),
        Command::Consume(a) => consume::run(&a, out, err),
        Command::Groups(a) => groups::run(&a, out),
    }
}

/// A usage error found after parsing, printed as clap prints its own (with the usage of the
/// subcommand named by `args`).
fn usage_error(args: &[OsString], message: &str) -> clap::Error {
    let mut cmd = Cli::command();
    cmd.build();
    let mut sub = &mut cmd;
    for name in args.iter().filter_map(|a| a.to_str()) {
        if sub.find_subcommand(name).is_none() {
            continue;
        }
        sub = sub.find_subcommand_mut(name).expect("just found");
    }
    sub.error(ErrorKind::ValueValidation, message)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let result = run(cli.command, &mut out, &mut err);
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
            let e = usage_error(&args[1..], &m);
            let _ = write!(err, "{}", e.render());
            ExitCode::from(2)
        }
        Err(e) => {
            let _ = writeln!(err, "partlog: {e}");
            ExitCode::from(1)
        }
    }
}
