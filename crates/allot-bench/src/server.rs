//! Building, preparing, starting and stopping the `allot serve` child process.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::Synchronous;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The workspace root this crate was built in.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The `allot` binary to run; the default one is built with cargo when missing.
pub fn ensure_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--allot-bin {} does not exist", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let path = target_dir().join("release").join("allot");
    if !path.is_file() {
        eprintln!(
            "{} is missing: cargo build --release -p allot-cli",
            path.display()
        );
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "-p", "allot-cli"])
            .current_dir(workspace_root())
            .status()
            .context("running cargo build")?;
        if !status.success() || !path.is_file() {
            bail!("building allot-cli failed ({status})");
        }
    }
    Ok(path)
}

/// Copies the binary into the run directory, so a rebuild during the run changes nothing.
pub fn pin_binary(bin: &Path, run_dir: &Path) -> Result<PathBuf> {
    let pinned = run_dir.join("allot");
    std::fs::copy(bin, &pinned)
        .with_context(|| format!("copying {} to {}", bin.display(), pinned.display()))?;
    let age = std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .map_or_else(|| "unknown".to_owned(), |age| format!("{}s", age.as_secs()));
    eprintln!("using {} (built {age} ago)", bin.display());
    Ok(pinned)
}

/// How to run one server: binary, database and durability.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub bin: PathBuf,
    pub db_url: String,
    pub synchronous: Synchronous,
    pub log: PathBuf,
}

impl ServerSpec {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.env("ALLOT_SQLITE_SYNCHRONOUS", self.synchronous.env_value());
        command
    }

    fn log_file(&self) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))
    }

    /// Migrates the database and creates an admin key (the last stdout line of `keys create`).
    pub fn prepare(&self) -> Result<String> {
        let migrate = self
            .command()
            .args(["migrate", "--db", &self.db_url])
            .stdout(Stdio::from(self.log_file()?))
            .stderr(Stdio::from(self.log_file()?))
            .status()
            .context("running allot migrate")?;
        if !migrate.success() {
            bail!(
                "allot migrate failed ({migrate}); see {}",
                self.log.display()
            );
        }
        let output = self
            .command()
            .args(["keys", "create", "--role", "admin", "--db", &self.db_url])
            .stderr(Stdio::from(self.log_file()?))
            .output()
            .context("running allot keys create")?;
        if !output.status.success() {
            bail!(
                "allot keys create failed ({}); see {}",
                output.status,
                self.log.display()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let key = stdout
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .context("allot keys create printed no key")?;
        Ok(key.to_owned())
    }

    /// Starts `allot serve` on a free loopback port and waits for `/readyz`.
    pub async fn start(&self) -> Result<RunningServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let child = self
            .command()
            .args(["serve", "--db", &self.db_url, "--listen", &listen])
            .stdin(Stdio::null())
            .stdout(Stdio::from(self.log_file()?))
            .stderr(Stdio::from(self.log_file()?))
            .spawn()
            .context("spawning allot serve")?;
        let mut server = RunningServer {
            child,
            base_url: format!("http://{listen}"),
        };
        if let Err(err) = server.wait_ready().await {
            let _ = server.stop().await;
            return Err(err.context(format!("server log: {}", self.log.display())));
        }
        Ok(server)
    }
}

#[derive(Debug)]
pub struct RunningServer {
    child: Child,
    pub base_url: String,
}

impl RunningServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/readyz", self.base_url);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("allot serve exited during start-up ({status})");
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("allot serve not ready after {READY_TIMEOUT:?}")
    }

    /// Peak resident set size of the process so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        status_field_kib(self.pid(), "VmHWM")
    }

    /// SIGINT (allot shuts down on Ctrl-C), then SIGKILL if it has not exited in time.
    pub async fn stop(mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!("allot serve ignored SIGINT for {STOP_TIMEOUT:?}; killing it");
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// A `kB` field of `/proc/<pid>/status`.
pub fn status_field_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_field(&status, field)
}

fn parse_status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vmhwm() {
        let status = "Name:\tallot\nVmPeak:\t  100 kB\nVmHWM:\t   2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_status_field(status, "VmHWM"), Some(2048));
        assert_eq!(parse_status_field(status, "VmRSS"), Some(1024));
        assert_eq!(parse_status_field(status, "VmSwap"), None);
    }

    #[test]
    fn own_process_has_vmhwm() {
        assert!(status_field_kib(std::process::id(), "VmHWM").unwrap_or(0) > 0);
    }
}
