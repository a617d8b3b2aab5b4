//! The demo's child processes: started with their output in files, stopped cleanly at the end (or kept), and read for the line that says where each listens.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use super::DEADLINE;
use crate::process::{listening_event, wait_until};

/// Child processes: stopped when the demo ends, unless they are to be kept.
pub(super) struct Processes {
    pub(super) children: Vec<(String, Child)>,
    pub(super) keep: bool,
}

impl Processes {
    pub(super) fn spawn(&mut self, name: &str, command: &mut Command) -> anyhow::Result<u32> {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        Ok(pid)
    }

    /// Is `name` still running?
    fn running(&mut self, name: &str) -> bool {
        self.children
            .iter_mut()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, child)| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGTERM to each, then waits; returns the names that did not exit with code 0.
    pub(super) fn stop_all(&mut self) -> Vec<String> {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let started = Instant::now();
        let mut unclean = Vec::new();
        for (name, child) in self.children.drain(..).collect::<Vec<_>>().iter_mut() {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        // Bank cores are plain servers and end on the signal itself.
                        if !status.success() && !name.starts_with("core") {
                            unclean.push(format!("{name} ({status})"));
                        }
                        break;
                    }
                    Ok(None) if started.elapsed() < DEADLINE => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        unclean.push(format!("{name} (killed after {DEADLINE:?})"));
                        break;
                    }
                }
            }
        }
        unclean
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if !self.keep {
            for (_, child) in &mut self.children {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Runs `command` to its end; fails naming `what`, with its stderr, unless it succeeded.
pub(super) fn run_ok(command: &mut Command, what: &str) -> anyhow::Result<std::process::Output> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    ensure!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(output)
}

/// Polls `check` until it returns `Some`, or fails naming `what` after [`DEADLINE`].
pub(super) fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    Ok(wait_until(what, DEADLINE, check)?)
}

/// Waits for a process's `"event":"listening"` line in `out`; returns it.
pub(super) fn listening_line(
    processes: &mut Processes,
    name: &str,
    out: &Path,
    log: &Path,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if let Some(line) = text.lines().find_map(listening_event) {
            return Ok(line);
        }
        if !processes.running(name) {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "{name} exited before listening: {}",
                log.lines().last().unwrap_or("")
            );
        }
        ensure!(
            started.elapsed() < DEADLINE,
            "{name} did not report its address within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
