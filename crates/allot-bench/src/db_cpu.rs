//! PostgreSQL's share of a run's CPU: the backends serving the run's
//! database, found in `/proc` by their process title
//! (`postgres: <user> <database> <client> <state>`), their user + system
//! time summed over the run. Shared processes (WAL writer, checkpointer)
//! serve every database at once and are not counted.

use std::collections::HashMap;
use std::time::Instant;

use crate::cpu::process_cpu_seconds;

/// CPU seconds of every backend of `database` now, by pid.
fn backends(database: &str) -> HashMap<u32, f64> {
    let needle = format!(" {database} ");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|title| {
                let title = String::from_utf8_lossy(&title);
                title.starts_with("postgres: ") && title.contains(&needle)
            })
        })
        .filter_map(|pid| Some((pid, process_cpu_seconds(pid)?)))
        .collect()
}

/// Measures the cores the backends of one database used between `start`
/// and `cores` (a backend that connected meanwhile counts from zero).
#[derive(Debug, Clone)]
pub struct DbCpuMeter {
    database: String,
    before: HashMap<u32, f64>,
    at: Instant,
}

impl DbCpuMeter {
    pub fn start(database: &str) -> Self {
        DbCpuMeter {
            database: database.to_owned(),
            before: backends(database),
            at: Instant::now(),
        }
    }

    pub fn cores(&self) -> Option<f64> {
        let now = backends(&self.database);
        let used: f64 = now
            .iter()
            .map(|(pid, cpu)| cpu - self.before.get(pid).copied().unwrap_or(0.0))
            .sum();
        let wall = self.at.elapsed().as_secs_f64();
        (wall > 0.0).then(|| used / wall)
    }
}

/// The database name of a `postgres://…/name?…` URL.
pub fn database_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let name = path.split('?').next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names() {
        assert_eq!(
            database_of("postgres://postgres@127.0.0.1:5432/allot_bench_srv_1a?sslmode=disable")
                .as_deref(),
            Some("allot_bench_srv_1a")
        );
        assert_eq!(database_of("postgres://h/"), None);
        assert_eq!(
            database_of("sqlite:///tmp/x.db").as_deref(),
            Some("tmp/x.db")
        );
    }

    #[test]
    fn no_backends_use_nothing() {
        let meter = DbCpuMeter::start("no_such_database_here");
        assert_eq!(meter.cores(), Some(0.0));
    }
}
