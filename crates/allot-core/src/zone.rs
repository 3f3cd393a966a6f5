//! The organization's time zone: one IANA zone decides which calendar day
//! it is, so dates, period boundaries and scheduled events turn at local
//! midnight, whatever daylight-saving time does to the offset.

use chrono::{DateTime, NaiveDate, Utc};

pub use chrono_tz::Tz;

/// The zone an organization runs on when nothing says otherwise.
pub const DEFAULT_ZONE: Tz = Tz::UTC;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)")]
pub struct UnknownZone(pub String);

/// Parses an IANA zone name exactly as the tz database spells it.
pub fn parse_zone(name: &str) -> Result<Tz, UnknownZone> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| UnknownZone(name.to_string()))
}

/// The calendar day in `zone` at the instant `now`.
pub fn today_in(zone: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn zone_names_are_the_tz_database_names() {
        assert_eq!(parse_zone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
        assert_eq!(parse_zone(" UTC "), Ok(Tz::UTC));
        assert_eq!(
            parse_zone("Mars/Olympus"),
            Err(UnknownZone("Mars/Olympus".into()))
        );
        assert!(parse_zone("").is_err());
    }

    #[test]
    fn utc_days_turn_at_utc_midnight() {
        assert_eq!(
            today_in(DEFAULT_ZONE, utc(2026, 3, 31, 23, 59)),
            day(2026, 3, 31)
        );
        assert_eq!(
            today_in(DEFAULT_ZONE, utc(2026, 4, 1, 0, 0)),
            day(2026, 4, 1)
        );
    }

    /// New York is five hours behind UTC in winter and four in summer: the
    /// local day turns at 05:00 UTC before the March change, 04:00 after.
    #[test]
    fn local_midnight_moves_with_daylight_saving_time() {
        let ny = parse_zone("America/New_York").unwrap();
        // Winter (EST): the first of January begins at 05:00 UTC.
        assert_eq!(today_in(ny, utc(2026, 1, 1, 4, 59)), day(2025, 12, 31));
        assert_eq!(today_in(ny, utc(2026, 1, 1, 5, 0)), day(2026, 1, 1));
        // 8 March 2026 02:00 EST → 03:00 EDT: that day lasts 23 hours.
        assert_eq!(today_in(ny, utc(2026, 3, 8, 4, 59)), day(2026, 3, 7));
        assert_eq!(today_in(ny, utc(2026, 3, 8, 5, 0)), day(2026, 3, 8));
        assert_eq!(today_in(ny, utc(2026, 3, 9, 3, 59)), day(2026, 3, 8));
        assert_eq!(today_in(ny, utc(2026, 3, 9, 4, 0)), day(2026, 3, 9));
        // Summer (EDT): the second quarter begins at 04:00 UTC.
        assert_eq!(today_in(ny, utc(2026, 4, 1, 3, 59)), day(2026, 3, 31));
        assert_eq!(today_in(ny, utc(2026, 4, 1, 4, 0)), day(2026, 4, 1));
    }

    #[test]
    fn zones_east_of_utc_are_a_day_ahead_before_utc_midnight() {
        let tokyo = parse_zone("Asia/Tokyo").unwrap();
        assert_eq!(today_in(tokyo, utc(2026, 3, 31, 15, 0)), day(2026, 4, 1));
        assert_eq!(today_in(tokyo, utc(2026, 3, 31, 14, 59)), day(2026, 3, 31));
    }
}
