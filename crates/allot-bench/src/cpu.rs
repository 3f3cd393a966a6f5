//! CPU accounting from `/proc`: how busy the machine is, and what each side of a run used.

use std::time::{Duration, Instant};

/// Linux reports process times in clock ticks of 1/100 s on every mainstream architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// `/proc/loadavg`'s 1-, 5- and 15-minute figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `(total, idle)` jiffies of all CPUs.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((fields.iter().sum(), idle))
}

/// Share of all CPUs' time not idle over one second, e.g. `3%`: other work skews results.
pub async fn machine_busy_percent() -> String {
    let Some((total0, idle0)) = machine_jiffies() else {
        return "unknown".to_owned();
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    match machine_jiffies() {
        Some((total1, idle1)) if total1 > total0 => {
            let busy = 1.0 - (idle1 - idle0) as f64 / (total1 - total0) as f64;
            format!("{:.0}%", busy * 100.0)
        }
        _ => "unknown".to_owned(),
    }
}

/// User plus system CPU time of a process (all its threads), in seconds.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_seconds(&stat)
}

fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// Measures how many cores a process used between `start` and `cores`.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    cpu: Option<f64>,
    at: Instant,
}

impl CpuMeter {
    pub fn start(pid: u32) -> Self {
        CpuMeter {
            pid,
            cpu: process_cpu_seconds(pid),
            at: Instant::now(),
        }
    }

    pub fn own() -> Self {
        Self::start(std::process::id())
    }

    /// Average cores used since `start` (1.0 = one core fully busy).
    pub fn cores(&self) -> Option<f64> {
        let used = process_cpu_seconds(self.pid)? - self.cpu?;
        let wall = self.at.elapsed().as_secs_f64();
        (wall > 0.0).then(|| used / wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let stat = "1234 (allot serve) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn own_cpu_is_readable() {
        let meter = CpuMeter::own();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(meter.cores().is_some());
        assert!(load_average() != "unknown");
    }
}
