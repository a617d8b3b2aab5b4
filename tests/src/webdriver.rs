//! A small W3C WebDriver client driving Debian's headless Chromium through chromedriver, for tests of the portal's pages; on a failing test it saves a screenshot and the page under `target/screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where Debian installs the browser and its driver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The key of a W3C WebDriver element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Where Debian installs chromedriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session; the driver and browser end when it is dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    name: String,
    _profile: tempfile::TempDir,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with an empty profile. `name` names
    /// the screenshot saved if the test fails.
    pub fn start(name: &str) -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: scripts/test installs Debian's chromium and chromium-driver"
            );
        }
        let port = crate::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        crate::wait_for("chromedriver to be ready", Duration::from_secs(30), || {
            let mut response = agent().get(&format!("{base}/status")).call().ok()?;
            let status: Value = response.body_mut().read_json().ok()?;
            (status["value"]["ready"] == true).then_some(())
        });
        let profile = tempfile::tempdir().expect("a temp dir");
        // The flags the machine's notes give for a closed network: no background traffic.
        let args = json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let mut response = agent()
            .post(&format!("{base}/session"))
            .send_json(&capabilities)
            .expect("chromedriver answers");
        let created: Value = response.body_mut().read_json().expect("JSON");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        Self {
            driver,
            base,
            session,
            name: name.to_owned(),
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut response = match (method, body) {
            ("GET", _) => agent().get(&url).call(),
            ("DELETE", _) => agent().delete(&url).call(),
            (_, body) => agent()
                .post(&url)
                .send_json(body.unwrap_or_else(|| json!({}))),
        }
        .expect("chromedriver answers");
        let answer: Value = response.body_mut().read_json().expect("JSON");
        answer["value"].clone()
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The address the browser shows.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's HTML.
    pub fn source(&self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element matching `css`, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        // A W3C element reference; anything else (an error such as "no such element",
        // e.g. while the page reloads) is no element.
        found.get(ELEMENT)?.as_str().map(str::to_owned)
    }

    /// The visible text of the element matching `css` (empty when there is none).
    pub fn text(&self, css: &str) -> String {
        self.find(css)
            .map(|element| {
                self.call("GET", &format!("/element/{element}/text"), None)
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    }

    /// An attribute of the element matching `css`.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css)?;
        self.call("GET", &format!("/element/{element}/attribute/{name}"), None)
            .as_str()
            .map(str::to_owned)
    }

    /// Clicks the element matching `css`; panics when there is none.
    pub fn click(&self, css: &str) {
        let element = self
            .find(css)
            .unwrap_or_else(|| panic!("nothing to click matches {css}"));
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// Types `text` into the field matching `css`; panics when there is none.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self
            .find(css)
            .unwrap_or_else(|| panic!("no field matches {css}"));
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Sets the window's size in CSS pixels (e.g. a phone's, for the mobile layout).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    /// Moves into the frame matching `css`: finds and texts then read its document.
    pub fn enter_frame(&self, css: &str) {
        let element = self
            .find(css)
            .unwrap_or_else(|| panic!("no frame matches {css}"));
        self.call(
            "POST",
            "/frame",
            Some(json!({ "id": { ELEMENT: element } })),
        );
    }

    /// Moves back to the page that holds the current frame.
    pub fn leave_frame(&self) {
        self.call("POST", "/frame/parent", Some(json!({})));
    }

    /// Waits up to `deadline` for `check` to hold, reloading nothing: pages that
    /// refresh themselves move on by themselves.
    pub fn wait_until(&self, what: &str, deadline: Duration, mut check: impl FnMut(&Self) -> bool) {
        let started = Instant::now();
        while !check(self) {
            assert!(
                started.elapsed() < deadline,
                "timed out after {deadline:?} waiting for {what}; the browser is at {}",
                self.url()
            );
            std::thread::park_timeout(Duration::from_millis(200));
        }
    }

    /// Saves a PNG of the page and its HTML under `target/screenshots/`.
    pub fn save_screenshot(&self, label: &str) -> PathBuf {
        let dir = PathBuf::from(
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../target/screenshots");
        let _ = std::fs::create_dir_all(&dir);
        let png = dir.join(format!("{}-{label}.png", self.name));
        if let Some(data) = self.call("GET", "/screenshot", None).as_str() {
            use base64::Engine as _;
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) {
                let _ = std::fs::write(&png, bytes);
            }
        }
        let _ = std::fs::write(
            dir.join(format!("{}-{label}.html", self.name)),
            self.source(),
        );
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let saved = self.save_screenshot("failure");
            eprintln!("the page at failure is saved as {}", saved.display());
        }
        let _ = agent()
            .delete(&format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
