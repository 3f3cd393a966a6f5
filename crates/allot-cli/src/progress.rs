//! Progress of work that can take more than a second (following every page
//! of a listing, seeding the demo, imports): on a terminal a bar with rate
//! and ETA (indicatif); otherwise a plain line every few seconds, so the log
//! of a script shows the work advancing without control characters. Always
//! on standard error: standard output stays the answer.
//!
//! ```ignore
//! let progress = Progress::new("importing usage", Some(rows.len() as u64));
//! for row in rows { send(row).await?; progress.inc(1); }
//! progress.finish();
//! ```

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain line is printed; work done sooner prints none.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    shown: Shown,
}

enum Shown {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

impl Progress {
    /// `total` when the amount of work is known (a bar with an ETA),
    /// `None` when it is not (a count and a rate).
    pub fn new(label: &str, total: Option<u64>) -> Progress {
        let shown = if std::io::stderr().is_terminal() {
            Shown::Bar(bar(label, total))
        } else {
            Shown::Lines(Mutex::new(Lines::new(label, total, Instant::now())))
        };
        Progress { shown }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        match &self.shown {
            Shown::Bar(bar) => bar.inc(n),
            Shown::Lines(lines) => {
                let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(line) = lines.inc(n, Instant::now()) {
                    eprintln!("{line}");
                }
            }
        }
    }

    /// Units done so far.
    pub fn position(&self) -> u64 {
        match &self.shown {
            Shown::Bar(bar) => bar.position(),
            Shown::Lines(lines) => lines.lock().unwrap_or_else(|e| e.into_inner()).done,
        }
    }

    /// The work is over: the bar is cleared; plain lines end with a last
    /// one, if any was printed.
    pub fn finish(self) {
        match self.shown {
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Lines(lines) => {
                let lines = lines.into_inner().unwrap_or_else(|e| e.into_inner());
                if let Some(line) = lines.finish(Instant::now()) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// A bar when the total is known, a spinner with a count when not.
const BAR: &str = "{msg} [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta}";
const SPINNER: &str = "{spinner} {msg} {human_pos} {per_sec}";

fn bar(label: &str, total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(total) => (ProgressBar::new(total), BAR),
        None => (ProgressBar::new_spinner(), SPINNER),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The plain reporter's state, with time passed in so it can be tested.
struct Lines {
    label: String,
    total: Option<u64>,
    done: u64,
    began: Instant,
    next_line: Instant,
    printed: bool,
}

impl Lines {
    fn new(label: &str, total: Option<u64>, now: Instant) -> Lines {
        Lines {
            label: label.to_string(),
            total,
            done: 0,
            began: now,
            next_line: now + PLAIN_EVERY,
            printed: false,
        }
    }

    /// The line to print now, if one is due.
    fn inc(&mut self, n: u64, now: Instant) -> Option<String> {
        self.done = self.done.saturating_add(n);
        if now < self.next_line {
            return None;
        }
        self.next_line = now + PLAIN_EVERY;
        self.printed = true;
        Some(line(&self.label, self.done, self.total, now - self.began))
    }

    fn finish(&self, now: Instant) -> Option<String> {
        self.printed.then(|| {
            format!(
                "{}: done, {} in {:.1}s",
                self.label,
                self.done,
                (now - self.began).as_secs_f64()
            )
        })
    }
}

/// "seeding: 30 of 120 (25%), 10.0/s, about 9s left", or without a total
/// "listing: 30, 10.0/s".
fn line(label: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    match total {
        Some(total) => {
            let percent = done
                .min(total)
                .saturating_mul(100)
                .checked_div(total)
                .unwrap_or(100);
            let left = total.saturating_sub(done);
            let eta = if rate > 0.0 {
                format!("about {:.0}s left", left as f64 / rate)
            } else {
                "time left unknown".to_string()
            };
            format!("{label}: {done} of {total} ({percent}%), {rate:.1}/s, {eta}")
        }
        None => format!("{label}: {done}, {rate:.1}/s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_templates_are_valid() {
        for template in [BAR, SPINNER] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn a_line_says_how_far_how_fast_and_how_long_yet() {
        let three = Duration::from_secs(3);
        assert_eq!(
            line("seeding", 30, Some(120), three),
            "seeding: 30 of 120 (25%), 10.0/s, about 9s left"
        );
        assert_eq!(line("listing", 30, None, three), "listing: 30, 10.0/s");
        assert_eq!(
            line("seeding", 0, Some(5), Duration::ZERO),
            "seeding: 0 of 5 (0%), 0.0/s, time left unknown"
        );
        assert_eq!(
            line("empty", 0, Some(0), three),
            "empty: 0 of 0 (100%), 0.0/s, time left unknown"
        );
    }

    #[test]
    fn plain_lines_come_every_few_seconds_and_not_for_quick_work() {
        let start = Instant::now();
        let mut lines = Lines::new("listing", None, start);
        assert_eq!(lines.inc(10, start + Duration::from_millis(500)), None);
        assert_eq!(lines.finish(start + Duration::from_secs(1)), None);
        let first = lines.inc(10, start + PLAIN_EVERY);
        assert_eq!(first.as_deref(), Some("listing: 20, 10.0/s"));
        assert_eq!(lines.inc(1, start + PLAIN_EVERY + PLAIN_EVERY / 2), None);
        assert!(lines.inc(1, start + PLAIN_EVERY * 2).is_some());
        assert_eq!(
            lines.finish(start + Duration::from_secs(5)).as_deref(),
            Some("listing: done, 22 in 5.0s")
        );
    }
}
