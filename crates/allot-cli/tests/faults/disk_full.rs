//! A full disk under SQLite: the database lives on a small tmpfs the test
//! mounts (`mount -t tmpfs -o size=…`, so it needs root; under `CI=true` it
//! fails without), which a ballast file then fills while the load runs.
//! Writes must be answered 507 `storage_full` (nothing applied), reads
//! keep working, nothing acknowledged is lost, writes resume by themselves
//! once the ballast is removed (no restart), and after a clean stop
//! `PRAGMA integrity_check` answers ok.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use crate::api::{Http, Request};
use crate::common::{finish, load, server_env, start_servers, Probe};
use crate::workload::{join, Round};
use crate::{exclusive, profile, seed};

/// The filesystem's size.
const SIZE: &str = "256m";
/// Held back from the start by a file of its own, and freed with the
/// ballast: the room writes resume into (the WAL grows fast under load).
const RESERVE: u64 = 200 * 1024 * 1024;
/// Writes must resume within this once space is freed.
const RESUME: Duration = Duration::from_secs(15);

/// A tmpfs of `SIZE` mounted on a temporary directory; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (after saying why) when this machine cannot mount one and
    /// the test may be skipped; panics under `CI=true`.
    fn mount(test: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={SIZE},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                let why = format!("cannot mount a {SIZE} tmpfs (needs root): {why}");
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{test}: {why} (CI=true: this test must run)");
                }
                println!("{test}: SKIPPED: {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Holds `RESERVE` bytes back in a file of its own.
    fn reserve(&self) {
        std::fs::write(self.path().join("reserve"), vec![0x5Au8; RESERVE as usize])
            .expect("write the reserve");
    }

    /// Writes a ballast file until the filesystem refuses: bytes written.
    fn fill(&self) -> u64 {
        let mut file = std::fs::File::create(self.ballast()).expect("create ballast");
        let chunk = vec![0xA5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("writing the ballast: {e}"),
            }
        }
        // Smaller pieces, down to the last block.
        for size in [4096usize, 512, 1] {
            while file.write(&chunk[..size]).is_ok_and(|n| n > 0) {
                written += size as u64;
            }
        }
        written
    }

    /// `df` and `ls -la` of the filesystem, for a failure's message.
    fn describe(&self) -> String {
        let run = |cmd: &str, args: &[&str]| {
            Command::new(cmd)
                .args(args)
                .arg(self.path())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        format!("{}{}", run("df", &["-k"]), run("ls", &["-la"]))
    }

    fn ballast(&self) -> PathBuf {
        self.path().join("ballast")
    }

    /// Removes the ballast and the reserve.
    fn free(&self) {
        std::fs::remove_file(self.ballast()).expect("remove ballast");
        std::fs::remove_file(self.path().join("reserve")).expect("remove reserve");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// `PRAGMA integrity_check` on the file (the server stopped).
fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.join("; ")
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_refused_reads_served_then_resumed() {
        let test = "disk_full::sqlite";
        let Some(disk) = SmallDisk::mount(test) else {
            return;
        };
        let _serial = exclusive().await;
        let profile = profile();
        let seed = seed(test);
        let mut rng = StdRng::seed_from_u64(seed);
        disk.reserve();
        let file = disk.path().join("allot.db");
        let db = format!("sqlite://{}", file.display());
        let logs = tempfile::tempdir().unwrap();
        let env = server_env(&[]);
        let (mut servers, admin) =
            tokio::task::block_in_place(|| start_servers(1, &db, logs.path(), &env));
        let base = servers[0].url.clone();
        let load = load(&base, &db, admin.clone(), "full").await;
        let ent = load.fixture.usage_ents[0].clone();
        // The probe's writes go to an entitlement of their own.
        let http = Http::new();
        let probe_ent = probe_entitlement(&http, &base, &admin, &load.fixture.account).await;
        let probe = Probe::new();
        let clients = profile.clients_per_server;
        let run = |cycle: usize, stop: &Arc<AtomicBool>| {
            load.spawn(
                &Round {
                    targets: vec![base.clone()],
                    clients,
                    cycle,
                    seed,
                    stop_on_loss: false,
                },
                stop,
            )
        };

        // 1. Room to spare.
        let stop = Arc::new(AtomicBool::new(false));
        let handles = run(0, &stop);
        tokio::time::sleep(profile.load / 4).await;
        // 2. The disk fills: wait for writes refused with storage_full, reading meanwhile.
        let ballast = tokio::task::block_in_place(|| disk.fill());
        let full_at = Instant::now();
        let (mut reads, mut reads_failed, mut ready) = (0u64, Vec::new(), Vec::new());
        loop {
            let read = probe
                .get(
                    &format!("{base}/v1/entitlements/{ent}/balance"),
                    Some(&admin),
                )
                .await;
            reads += 1;
            if read.status != 200 {
                reads_failed.push(read);
            }
            ready.push(probe.get(&format!("{base}/readyz"), None).await.status);
            let full = load
                .book()
                .sent
                .iter()
                .filter(|s| {
                    s.answer
                        .as_ref()
                        .is_some_and(|a| a.code() == "storage_full")
                })
                .count();
            if full >= 20 && full_at.elapsed() >= profile.load / 4 {
                break;
            }
            assert!(
                full_at.elapsed() < Duration::from_secs(30),
                "no write was refused storage_full 30 s after the disk filled ({full} so far)\n{}",
                servers[0].log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let full_for = full_at.elapsed();
        stop.store(true, Ordering::Relaxed);
        join(handles).await;
        // 3. Space freed: writes resume without a restart, and the load runs again.
        disk.free();
        let freed_at = Instant::now();
        let mut n = 0;
        let resumed = loop {
            n += 1;
            let w = probe
                .post_usage(&base, &admin, &probe_ent, &format!("resume-{n}"))
                .await;
            if w.status == 201 {
                break freed_at.elapsed();
            }
            assert!(
                w.code == "storage_full" && freed_at.elapsed() < RESUME,
                "writes did not resume within {RESUME:?} of freeing space: {w:?}\n{}\n{}",
                disk.describe(),
                servers[0].log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let stop = Arc::new(AtomicBool::new(false));
        let handles = run(1, &stop);
        tokio::time::sleep(profile.load / 4).await;
        stop.store(true, Ordering::Relaxed);
        join(handles).await;

        assert!(
            reads_failed.is_empty(),
            "reads failed while the disk was full: {reads_failed:?}"
        );
        let summary = finish(test, &load, &base, &mut servers, &mut rng).await;
        let unexpected: Vec<&String> = summary
            .faults
            .keys()
            .filter(|c| c.as_str() != "storage_full")
            .collect();
        assert!(
            unexpected.is_empty(),
            "5xx other than storage_full: {:?}",
            summary.faults
        );
        // A clean stop, then the file itself.
        let (status, _) =
            tokio::task::block_in_place(|| servers[0].stop("TERM", Duration::from_secs(15)));
        assert!(
            status.is_some_and(|s| s.success()),
            "allot serve did not stop cleanly"
        );
        let check = tokio::task::block_in_place(|| integrity(&file));
        assert_eq!(check, "ok", "PRAGMA integrity_check");
        let ready_200 = ready.iter().filter(|s| **s == 200).count();
        println!(
            "{test}: {SIZE} tmpfs ({} MiB held back), filled with a {} KiB ballast; full for {:.1} s: {reads} reads all 200, \
             /readyz 200 {ready_200} of {} times; writes resumed {:.2} s after the ballast was removed \
             (no restart); integrity_check ok; {}",
            RESERVE >> 20,
            ballast / 1024,
            full_for.as_secs_f64(),
            ready.len(),
            resumed.as_secs_f64(),
            summary.line()
        );
    }
}

/// An unrestricted entitlement for the probe's writes (outside the fixture
/// the checks read).
async fn probe_entitlement(http: &Http, base: &str, admin: &str, account: &str) -> String {
    let today = chrono::Utc::now().date_naive();
    let body = json!({
        "account_id": account, "name": "Probe", "unit": "units", "total": 1_000_000,
        "restrict": false, "decrement_on": "creation", "period": "none",
        "start_date": (today - chrono::Duration::days(1)).to_string(),
        "end_date": (today + chrono::Duration::days(30)).to_string(),
    });
    let ent = http
        .must(
            base,
            &Request::post(admin, "/v1/entitlements", Some(body), None),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/entitlements/{ent}/activate");
    http.must(
        base,
        &Request::post(admin, &path, Some(json!({})), None),
        200,
    )
    .await;
    ent
}
