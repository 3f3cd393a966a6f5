//! A PostgreSQL server of the test's own: `initdb` into a temporary
//! directory, its own port and socket directory, started, stopped and
//! restarted by the test (never the shared server the other suites use).
//! `initdb` and `postgres` refuse to run as root: as root, they run as the
//! `postgres` OS user (`runuser -u postgres --`) in a directory it owns.
//!
//! Where the binaries are: `ALLOT_PG_BIN` (a directory), else the newest
//! `/usr/lib/postgresql/*/bin`, else `PATH`. Without them the test fails
//! under `CI=true` and is skipped (with a line saying so) otherwise.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct OwnPostgres {
    bin: PathBuf,
    /// The cluster's directory (data, socket, log), removed at the end.
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn find_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("ALLOT_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| d.join("initdb").exists());
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(newest) = versions.pop() {
        return Some(newest);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `None` (after printing why) when the test cannot run here and may be
/// skipped; panics under `CI=true`, where it must run.
pub fn available(test: &str) -> Option<PathBuf> {
    match find_bin() {
        Some(bin) => Some(bin),
        None => {
            let why =
                "no PostgreSQL binaries (initdb, pg_ctl): install PostgreSQL or set ALLOT_PG_BIN";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: {why} (CI=true: this test must run)");
            }
            println!("{test}: SKIPPED: {why}");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OwnPostgres {
    /// `initdb` (trust authentication, user `postgres`) and start.
    pub fn init(bin: PathBuf) -> OwnPostgres {
        let dir = tempfile::Builder::new()
            .prefix("allot-faults-pg")
            .tempdir()
            .expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(owned.success(), "chown of the cluster directory failed");
        }
        let pg = OwnPostgres {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        pg.start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The admin URL (database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", path.display()))
    }

    fn ctl(&self, action: &[&str]) -> Output {
        let data = self.data();
        let log = self.dir.path().join("postgres.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut args = action.to_vec();
        args.extend_from_slice(&["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()]);
        args.extend_from_slice(&["-o", &options, "-w", "-t", "60"]);
        self.run("pg_ctl", &args)
    }

    pub fn start(&self) {
        let out = self.ctl(&["start"]);
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            text(&out),
            self.log_tail()
        );
    }

    /// `pg_ctl stop -m fast`: connections are closed, the server is gone.
    pub fn stop(&self) {
        let out = self.ctl(&["stop", "-m", "fast"]);
        assert!(out.status.success(), "pg_ctl stop failed: {}", text(&out));
    }

    /// `pg_ctl restart -m fast`; returns how long it took.
    pub fn restart(&self) -> Duration {
        let began = Instant::now();
        let out = self.ctl(&["restart", "-m", "fast"]);
        assert!(
            out.status.success(),
            "pg_ctl restart failed: {}\n{}",
            text(&out),
            self.log_tail()
        );
        began.elapsed()
    }

    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "stop",
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
            ],
        );
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
