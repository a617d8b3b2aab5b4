//! Helpers for the multi-process tests: finding the built binaries, starting nodes as real processes, waiting with deadlines.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where the workspace's binaries are: `CONSENTNET_BIN_DIR`, or the profile directory
/// this test executable was built into (`target/<profile>/deps/..`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONSENTNET_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("the test executable is in a directory");
    deps.parent().expect("deps has a parent").to_path_buf()
}

/// The path of a workspace binary, with a message saying how to build it when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`), as scripts/test does",
        path.display()
    );
    path
}

/// A `consentnet-node` process that is killed when dropped.
pub struct NodeProcess {
    child: Child,
    /// The HTTP API's base URL, e.g. `http://127.0.0.1:40123`.
    pub http_url: String,
}

impl NodeProcess {
    /// Starts `consentnet-node run` on a free loopback port and waits, up to `deadline`,
    /// for the JSON line that names the bound address.
    pub fn start(deadline: Duration) -> Self {
        let child = Command::new(bin("consentnet-node"))
            .args(["run", "--http", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("consentnet-node starts");
        // Owned by the guard at once, so a panic below still kills the process.
        let mut node = Self {
            child,
            http_url: String::new(),
        };
        let stdout = node.child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            let line = receiver
                .recv_timeout(left)
                .expect("the node printed its listening address before the deadline");
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event["event"] == "listening" {
                let http = event["http"].as_str().expect("http is a string");
                node.http_url = format!("http://{http}");
                return node;
            }
        }
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits, up to `deadline`, for the process to exit; returns its exit code.
    pub fn terminate(mut self, deadline: Duration) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let started = Instant::now();
        while started.elapsed() < deadline {
            if let Some(status) = self.child.try_wait().expect("waiting on the node") {
                return status.code();
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        panic!("the node did not exit within {deadline:?} of SIGTERM");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs `url` and returns the status code and body.
pub fn http_get(url: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut response = agent.get(url).call().expect("the HTTP call completes");
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .expect("the body is text");
    (status, body)
}
