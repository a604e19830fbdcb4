//! Test servers written in Python (an implementation independent of Weir's): started, their
//! port read from the `PORT n` line they print, killed when dropped.
#![allow(dead_code)] // each user takes what it needs

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running Python server.
pub struct PyServer {
    child: Child,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
}

impl PyServer {
    /// Runs `tests/support/SCRIPT ARGS...` with `PYTHONPATH` set to `python_path` when given.
    pub fn start(script: &str, args: &[&std::ffi::OsStr], python_path: Option<&std::path::Path>) -> PyServer {
        let mut cmd = Command::new("python3");
        cmd.arg(format!("{}/tests/support/{script}", env!("CARGO_MANIFEST_DIR")))
            .args(args)
            .stdout(Stdio::piped());
        if let Some(path) = python_path {
            cmd.env("PYTHONPATH", path);
        }
        let mut child = cmd
            .spawn()
            .expect("python3 runs the test's server (scripts/test needs python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} did not start: {line:?}"));
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
