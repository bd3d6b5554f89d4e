//! Running the built `partlog` binary from the CLI's integration tests.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a run of the tool printed, and its exit code.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Both streams, for assertion messages and searches.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `partlog args`, feeding `stdin` if given (else no input).
pub fn partlog_with_stdin<S: AsRef<std::ffi::OsStr>>(args: &[S], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_partlog"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run partlog");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for partlog");
    Output {
        code: out.status.code().expect("partlog exited by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `partlog args` with no input.
pub fn partlog<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    partlog_with_stdin(args, None)
}

/// A temporary path as an argument.
pub fn p(path: &Path) -> String {
    path.to_str().expect("UTF-8 temp path").to_owned()
}
