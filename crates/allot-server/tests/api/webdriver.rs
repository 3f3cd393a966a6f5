//! A small WebDriver client over reqwest, enough to drive Debian's
//! headless chromium through `chromedriver` (W3C protocol).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session; both end on drop.
pub struct Driver {
    http: reqwest::Client,
    base: String,
    process: Child,
}

fn which(names: &[&str]) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    for name in names {
        for dir in path.split(':').chain(["/usr/bin", "/usr/lib/chromium"]) {
            let p = format!("{dir}/{name}");
            if std::path::Path::new(&p).is_file() {
                return Some(p);
            }
        }
    }
    None
}

impl Driver {
    /// Starts chromedriver and a headless chromium. `Err` says why not.
    pub async fn start() -> Result<Driver, String> {
        let driver = which(&["chromedriver", "chromium-driver"])
            .ok_or("chromedriver not found (scripts/browser-deps installs it)")?;
        let browser = which(&["chromium", "chromium-browser"])
            .ok_or("chromium not found (scripts/browser-deps installs it)")?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let process = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{driver}: {e}"))?;
        let mut d = Driver {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            process,
        };
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await {
                if r.status().is_success() {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !ready {
            return Err("chromedriver did not answer".into());
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1"]
            }
        } } });
        let r: Value = d
            .http
            .post(format!("{}/session", d.base))
            .json(&caps)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let id = r["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no browser session: {r}"))?;
        d.base = format!("{}/session/{id}", d.base);
        Ok(d)
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The page source once it contains `needle` (a click that submits a
    /// form may return before the next page has loaded); after 10 s, the
    /// source as it is, for the caller's assertion to show.
    pub async fn source_with(&self, needle: &str) -> String {
        let mut source = String::new();
        for _ in 0..200 {
            source = self.source().await;
            if source.contains(needle) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        source
    }

    /// The address once it ends with `suffix` (or after 10 s, as it is).
    pub async fn url_ending(&self, suffix: &str) -> String {
        let mut url = String::new();
        for _ in 0..200 {
            url = self.url().await;
            if url.ends_with(suffix) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        url
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        let body = self.find("body").await;
        self.cmd(reqwest::Method::GET, &format!("/element/{body}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    pub async fn count(&self, css: &str) -> usize {
        self.cmd(
            reqwest::Method::POST,
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        )
        .await
        .as_array()
        .map_or(0, Vec::len)
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Runs an async script; its callback's argument is the answer.
    pub async fn script(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }

    /// The page's full height (for a whole-page screenshot).
    pub async fn page_height(&self) -> u32 {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/execute/sync",
                Some(
                    json!({ "script": "return document.documentElement.scrollHeight", "args": [] }),
                ),
            )
            .await;
        v.as_u64().unwrap_or(900) as u32
    }

    /// The page's width beyond the viewport (0 when nothing overflows).
    pub async fn overflow_x(&self) -> i64 {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({ "script": "return document.documentElement.scrollWidth - document.documentElement.clientWidth", "args": [] })),
            )
            .await;
        v.as_i64().unwrap_or(0)
    }
}

impl Drop for Driver {
    /// After a failed test too: end the browser session (chromedriver
    /// closes chromium), then chromedriver itself.
    fn drop(&mut self) {
        use std::io::Write;
        if let Some(rest) = self.base.strip_prefix("http://") {
            if let Some((host, path)) = rest.split_once('/') {
                if let Ok(mut s) = std::net::TcpStream::connect(host) {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = write!(
                        s,
                        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let mut sink = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut s, &mut sink);
                }
            }
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
