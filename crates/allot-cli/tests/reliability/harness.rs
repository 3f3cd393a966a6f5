//! `allot serve` as a child process: start on a free port, wait until
//! ready, SIGKILL, restart on the same database, read its logs.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a start may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `allot` binary cargo built for this test.
pub fn allot_bin() -> &'static str {
    env!("CARGO_BIN_EXE_allot")
}

/// A command for the `allot` binary without any `ALLOT_*` setting of the
/// environment the tests run in (the tests pass what they mean).
fn allot_command() -> Command {
    let mut cmd = Command::new(allot_bin());
    for (name, _) in std::env::vars() {
        if name.starts_with("ALLOT_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// `allot keys create --role ROLE --db URL`: the key, alone on the last line.
pub fn create_key(db: &str, role: &str) -> String {
    let out = allot_command()
        .args(["keys", "create", "--role", role, "--db", db])
        .output()
        .expect("run allot keys create");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "allot keys create failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = text.trim().lines().last().unwrap_or_default().to_string();
    assert!(key.starts_with("allot_"), "no key on the last line: {text}");
    key
}

/// One `allot serve` process and what it takes to start it again.
pub struct Server {
    pub name: String,
    pub db: String,
    pub url: String,
    pub starts: usize,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

/// What a start printed.
pub struct Started {
    pub server: Server,
    /// The one-time admin key, when this start created it.
    pub admin_key: Option<String>,
}

impl Server {
    /// Starts `allot serve --db DB --listen 127.0.0.1:0` (the OS picks a free
    /// port; the URL is read from the start line) and waits for `/readyz` 200.
    pub fn start(name: &str, db: &str, dir: &Path, env: &[(&str, &str)]) -> Started {
        let mut server = Server {
            name: name.to_string(),
            db: db.to_string(),
            url: String::new(),
            starts: 0,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        let admin_key = server.spawn();
        Started { server, admin_key }
    }

    /// Starts the process again on the same database (after a kill).
    pub fn restart(&mut self) -> Option<String> {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.spawn()
    }

    fn spawn(&mut self) -> Option<String> {
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open server log");
        writeln!(log, "==== start {} of {} ====", self.starts, self.name).unwrap();
        let stderr = log.try_clone().expect("clone log handle");
        let mut cmd = allot_command();
        cmd.args(["serve", "--db", &self.db, "--listen", "127.0.0.1:0"])
            .env("ALLOT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let began = Instant::now();
        let mut child = cmd.spawn().expect("spawn allot serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Forwards stdout to the test until it is ready, and to the log always.
        std::thread::spawn(move || forward(stdout, log, tx));
        let mut admin_key = None;
        let mut after_no_keys = false;
        let url = loop {
            let left = START_TIMEOUT.saturating_sub(began.elapsed());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{} did not print its URL within {START_TIMEOUT:?} (start {}):\n{}",
                        self.name,
                        self.starts,
                        self.log_tail(40)
                    );
                }
            };
            if after_no_keys {
                admin_key = Some(line.trim().to_string());
                after_no_keys = false;
            } else if line.starts_with("No API keys yet") {
                after_no_keys = true;
            } else if let Some(url) = line.strip_prefix("allot listening on ") {
                break url.trim().to_string();
            }
        };
        self.url = url;
        self.child = Some(child);
        self.wait_ready(began);
        admin_key
    }

    /// Polls `/readyz` until it answers 200.
    fn wait_ready(&mut self, began: Instant) {
        let url = format!("{}/readyz", self.url);
        let mut last = String::new();
        while began.elapsed() < START_TIMEOUT {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited during start ({status}):\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            match blocking_get(&url) {
                Ok(200) => return,
                Ok(code) => last = format!("readyz answered {code}"),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} not ready within {START_TIMEOUT:?}: {last}\n{}",
            self.name,
            self.log_tail(40)
        );
    }

    /// SIGKILL (`Child::kill` on Unix), then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`"TERM"`, `"INT"`), then waits for the exit (at most
    /// `limit`; over it, SIGKILL): the exit status (`None`: it had to be
    /// killed) and how long it took.
    pub fn stop(&mut self, signal: &str, limit: Duration) -> (Option<ExitStatus>, Duration) {
        let mut child = self.child.take().expect("terminate a running server");
        let began = Instant::now();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {} failed", child.id());
        while began.elapsed() < limit {
            if let Some(status) = child.try_wait().expect("wait for allot serve") {
                return (Some(status), began.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        (None, began.elapsed())
    }

    /// Fails when the process has exited on its own.
    pub fn assert_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!(
                "{} exited on its own ({status}):\n{}",
                self.name,
                self.log_tail(60)
            );
        }
    }

    /// The last lines the process wrote (stdout and stderr, all starts).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Lines of the log that show a panic or an error.
    pub fn log_problems(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("panicked") || l.contains("ERROR"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn forward(stdout: std::process::ChildStdout, mut log: File, tx: mpsc::Sender<String>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(log, "{line}");
        let _ = tx.send(line);
    }
}

/// A plain HTTP/1.1 GET without a runtime: the status code.
fn blocking_get(url: &str) -> Result<u16, String> {
    use std::io::Read;
    use std::net::TcpStream;
    let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {text:?}"))
}
