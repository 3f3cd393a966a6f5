//! The burn-down chart, drawn here as SVG: what remains of the period's
//! allotment day by day (from the ledger), the even pace to zero, and the
//! forecast from today to the day it runs out.

use chrono::NaiveDate;
use std::fmt::Write;

pub struct Burndown<'a> {
    /// Total plus what rolled in.
    pub allotment: f64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub today: NaiveDate,
    /// Net use per day, in order.
    pub daily: &'a [(NaiveDate, f64)],
    /// What remains now (the balance).
    pub remaining: f64,
    /// The forecast's day of exhaustion, if within the period.
    pub exhausted_on: Option<NaiveDate>,
    pub burn_rate: f64,
    pub unit: &'a str,
}

const W: f64 = 720.0;
const H: f64 = 260.0;
const L: f64 = 48.0;
const R: f64 = 16.0;
const T: f64 = 16.0;
const B: f64 = 40.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Burndown<'_> {
    fn x(&self, d: NaiveDate) -> f64 {
        let span = (self.end - self.start).num_days().max(1) as f64;
        let at = (d - self.start).num_days() as f64;
        L + (at / span).clamp(0.0, 1.0) * (W - L - R)
    }

    fn y(&self, v: f64, top: f64) -> f64 {
        let v = v.clamp(0.0, top);
        T + (1.0 - v / top) * (H - T - B)
    }

    /// The chart as an SVG element (accessible: a title and a description
    /// that says what it shows in words).
    pub fn render(&self) -> String {
        let top = self.allotment.max(1.0);
        let mut s = String::new();
        let runs_out = match self.exhausted_on {
            Some(d) => format!(
                "at {:.2} {} a day it runs out on {d}",
                self.burn_rate,
                esc(self.unit)
            ),
            None => "at the current pace it lasts the period".to_string(),
        };
        let _ = write!(
            s,
            r##"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="bd-t bd-d" xmlns="http://www.w3.org/2000/svg"><title id="bd-t">Burn-down from {} to {}</title><desc id="bd-d">{:.3} of {:.3} {} remain; {}.</desc>"##,
            self.start,
            self.end,
            self.remaining,
            self.allotment,
            esc(self.unit),
            runs_out
        );
        // Axes and grid.
        for i in 0..=4 {
            let v = top * f64::from(i) / 4.0;
            let y = self.y(v, top);
            let _ = write!(
                s,
                r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#d5dbe1"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#4a5560">{}</text>"##,
                W - R,
                L - 6.0,
                y + 4.0,
                trim(v)
            );
        }
        let _ = write!(
            s,
            r##"<text x="{L}" y="{}" font-size="11" fill="#4a5560">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#4a5560">{}</text>"##,
            H - 10.0,
            self.start,
            W - R,
            H - 10.0,
            self.end
        );
        // The even pace.
        let _ = write!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#8795a1" stroke-dasharray="2 4"/>"##,
            self.x(self.start),
            self.y(top, top),
            self.x(self.end),
            self.y(0.0, top)
        );
        // What remained, day by day.
        let mut left = self.allotment;
        let mut points = format!("{:.1},{:.1}", self.x(self.start), self.y(left, top));
        for (day, used) in self.daily {
            if *day > self.today {
                break;
            }
            left -= used;
            let _ = write!(points, " {:.1},{:.1}", self.x(*day), self.y(left, top));
        }
        let _ = write!(
            s,
            r##"<polyline points="{points}" fill="none" stroke="#0b5cad" stroke-width="2.5"/>"##
        );
        // The forecast, from today's remaining.
        let now = (self.x(self.today), self.y(self.remaining, top));
        let end_at = match self.exhausted_on {
            Some(d) => (self.x(d), self.y(0.0, top)),
            None => {
                let days = (self.end - self.today).num_days() as f64;
                (
                    self.x(self.end),
                    self.y(self.remaining - self.burn_rate * days, top),
                )
            }
        };
        let _ = write!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#b3261e" stroke-width="2" stroke-dasharray="6 4"/>"##,
            now.0, now.1, end_at.0, end_at.1
        );
        if let Some(d) = self.exhausted_on {
            let x = self.x(d);
            let anchor = if x > W - 140.0 { "end" } else { "start" };
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{T}" y2="{}" stroke="#b3261e"/><text x="{:.1}" y="{}" font-size="12" fill="#7a1610" text-anchor="{anchor}">runs out {d}</text>"##,
                H - B,
                if anchor == "end" { x - 4.0 } else { x + 4.0 },
                T + 12.0
            );
        }
        s.push_str("</svg>");
        s
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_chart_draws_the_remaining_line_and_the_exhaustion_day() {
        let daily = [(d("2026-06-01"), 2.0), (d("2026-06-02"), 3.0)];
        let chart = Burndown {
            allotment: 10.0,
            start: d("2026-06-01"),
            end: d("2026-06-30"),
            today: d("2026-06-02"),
            daily: &daily,
            remaining: 5.0,
            exhausted_on: Some(d("2026-06-04")),
            burn_rate: 2.5,
            unit: "cases",
        }
        .render();
        assert!(chart.starts_with("<svg"));
        assert!(chart.ends_with("</svg>"));
        assert!(chart.contains("runs out 2026-06-04"));
        assert!(chart.contains("5.000 of 10.000 cases remain"));
        // Start at 10 (top), after day two at 5 (half way down).
        let half = T + 0.5 * (H - T - B);
        assert!(chart.contains(&format!(",{half:.1}\"")), "{chart}");
    }

    #[test]
    fn a_lasting_allotment_says_so() {
        let chart = Burndown {
            allotment: 10.0,
            start: d("2026-06-01"),
            end: d("2026-06-30"),
            today: d("2026-06-02"),
            daily: &[],
            remaining: 10.0,
            exhausted_on: None,
            burn_rate: 0.0,
            unit: "<x>",
        }
        .render();
        assert!(chart.contains("lasts the period"));
        assert!(!chart.contains("runs out"));
        assert!(chart.contains("&lt;x&gt;"));
    }
}
