use super::*;
use crate::entitlement::Period;
use crate::test_support::{active, day, terms};
use crate::zone::{parse_zone, today_in};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn q(n: i64) -> Quantity {
    Quantity::whole(n)
}

fn quarterly(total: i64, rollover: i64) -> Entitlement {
    let mut t = terms();
    t.total = Some(q(total));
    t.rollover = q(rollover);
    t.period = Period::Quarter;
    t.end_date = day(2027, 12, 31);
    active(t)
}

fn used(index: i64, n: i64) -> Counters {
    Counters {
        period_index: index,
        used: q(n),
        ..Counters::default()
    }
}

fn seen<'a>(e: &'a Entitlement, c: &'a Counters) -> Observed<'a> {
    Observed {
        entitlement: e,
        counters: c,
        notices_sent: &[],
        renewed: false,
    }
}

#[test]
fn notice_days_parse_as_configured() {
    let days = ExpiringSoon::parse("30,7").unwrap();
    assert_eq!(days.days(), &[7, 30]);
    assert_eq!(days.to_string(), "30,7");
    assert_eq!(days, ExpiringSoon::default());
    assert_eq!(ExpiringSoon::parse(" 7 , 30,7 ").unwrap(), days);
    assert_eq!(ExpiringSoon::parse("").unwrap().days(), &[] as &[u32]);
    assert_eq!(ExpiringSoon::parse("0,3660").unwrap().days(), &[0, 3660]);
    let eight = ExpiringSoon::parse("1,2,3,4,5,6,7,8").unwrap();
    assert_eq!(eight.days().len(), MAX_NOTICES);
    for bad in ["x", "30,,7", "-1", "3661", "7.5", "1,2,3,4,5,6,7,8,9"] {
        assert_eq!(
            ExpiringSoon::parse(bad),
            Err(BadNoticeDays(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn the_nearest_threshold_reached_is_due_until_the_end() {
    let days = ExpiringSoon::default();
    let end = day(2026, 12, 31);
    let due = |d| days.due(end, d);
    assert_eq!(due(day(2026, 11, 30)), None);
    assert_eq!(due(day(2026, 12, 1)), Some(30));
    assert_eq!(due(day(2026, 12, 23)), Some(30));
    assert_eq!(due(day(2026, 12, 24)), Some(7));
    assert_eq!(due(day(2026, 12, 31)), Some(7));
    assert_eq!(due(day(2027, 1, 1)), None);
    assert_eq!(ExpiringSoon::parse("").unwrap().due(end, end), None);
}

#[test]
fn the_next_threshold_is_the_next_day_to_look() {
    let days = ExpiringSoon::default();
    let end = day(2026, 12, 31);
    assert_eq!(
        days.next_after(end, day(2026, 6, 1)),
        Some(day(2026, 12, 1))
    );
    assert_eq!(
        days.next_after(end, day(2026, 12, 1)),
        Some(day(2026, 12, 24))
    );
    assert_eq!(days.next_after(end, day(2026, 12, 24)), None);
}

#[test]
fn each_closed_period_reports_its_window_use_and_unused() {
    let ent = quarterly(10, 5);
    let (after, closed) = close_periods(&ent, &used(0, 3), 2);
    assert_eq!(
        closed,
        vec![
            ClosedPeriod {
                period: window_of(&ent, 0),
                next: window_of(&ent, 1),
                total: Some(q(10)),
                carried_in: q(0),
                used: q(3),
                unused: Some(q(7)),
                carried_over: q(5),
            },
            ClosedPeriod {
                period: window_of(&ent, 1),
                next: window_of(&ent, 2),
                total: Some(q(10)),
                carried_in: q(5),
                used: q(0),
                unused: Some(q(15)),
                carried_over: q(5),
            },
        ]
    );
    assert_eq!(
        (window_of(&ent, 0).start, window_of(&ent, 0).end),
        (day(2026, 1, 1), day(2026, 3, 31))
    );
    assert_eq!(
        (window_of(&ent, 1).start, window_of(&ent, 1).end),
        (day(2026, 4, 1), day(2026, 6, 30))
    );
    assert_eq!(
        (after.period_index, after.used, after.carried),
        (2, q(0), q(5))
    );
    assert_eq!(
        closed[0].payload(),
        json!({
            "period": { "index": 0, "start": "2026-01-01", "end": "2026-03-31" },
            "next_period": { "index": 1, "start": "2026-04-01", "end": "2026-06-30" },
            "total": 10, "carried_in": 0, "used": 3, "unused": 7, "carried_over": 5
        })
    );
    let (same, none) = close_periods(&ent, &used(2, 1), 2);
    assert_eq!((same, none), (used(2, 1), vec![]));
}

#[test]
fn an_unlimited_period_has_nothing_unused() {
    let mut ent = quarterly(1, 0);
    ent.terms.total = None;
    let (_, closed) = close_periods(&ent, &used(0, 4), 1);
    assert_eq!(closed[0].unused, None);
    assert_eq!(closed[0].payload()["unused"], Value::Null);
    assert_eq!(closed[0].payload()["total"], Value::Null);
}

#[test]
fn a_whole_term_is_its_one_window() {
    let ent = active(terms());
    assert_eq!(
        window_of(&ent, 0),
        Window {
            index: 0,
            start: day(2026, 1, 1),
            end: day(2026, 12, 31)
        }
    );
    assert_eq!(window_of(&ent, 3), window_of(&ent, 0));
}

proptest! {
    /// Closing periods one by one reaches the counters one roll reaches,
    /// and each period hands the next what it carried over.
    #[test]
    fn closing_one_by_one_is_one_roll(
        total in 0i64..50, rollover in 0i64..30, used_now in 0i64..60,
        carried in 0i64..30, from in 0i64..4, ahead in 0i64..4, unlimited: bool,
    ) {
        let mut ent = quarterly(total, rollover);
        if unlimited {
            ent.terms.total = None;
        }
        let stored = Counters {
            period_index: from,
            used: q(used_now),
            carried: q(carried),
            ..Counters::default()
        };
        let (stepped, closed) = close_periods(&ent, &stored, from + ahead);
        let (rolled, _) = stored.roll_to(&ent, from + ahead);
        prop_assert_eq!(&stepped, &rolled);
        prop_assert_eq!(closed.len() as i64, ahead);
        for pair in closed.windows(2) {
            prop_assert_eq!(pair[0].carried_over, pair[1].carried_in);
            prop_assert_eq!(pair[0].next, pair[1].period);
            prop_assert_eq!(pair[1].used, Quantity::ZERO);
        }
        if let Some(last) = closed.last() {
            prop_assert_eq!(last.carried_over, stepped.carried);
            prop_assert_eq!(last.next.index, from + ahead);
        }
    }
}

#[test]
fn a_waiting_entitlement_activates_on_its_start_date() {
    let mut t = terms();
    t.start_date = day(2026, 3, 1);
    let mut ent = active(t);
    ent.status = Status::Waiting;
    let c = Counters::default();
    let before = agenda(&seen(&ent, &c), &ExpiringSoon::default(), day(2026, 2, 27));
    assert!(before.is_empty());
    assert_eq!(before.next_due, Some(day(2026, 3, 1)));
    let on = agenda(&seen(&ent, &c), &ExpiringSoon::default(), day(2026, 3, 1));
    assert_eq!(on.steps, vec![(Status::Waiting, Status::Active)]);
    assert!(!on.is_empty());
    assert_eq!(on.next_due, Some(day(2026, 12, 1)));
}

#[test]
fn an_active_entitlement_is_owed_resets_notices_and_its_expiry() {
    let ent = quarterly(10, 0);
    let c = used(0, 4);
    let days = ExpiringSoon::default();
    let mid_q1 = agenda(&seen(&ent, &c), &days, day(2026, 2, 1));
    assert!(mid_q1.is_empty());
    assert_eq!(mid_q1.next_due, Some(day(2026, 4, 1)));

    let q2 = agenda(&seen(&ent, &c), &days, day(2026, 4, 1));
    assert_eq!(q2.closed.len(), 1);
    assert_eq!(q2.counters.as_ref().map(|c| c.period_index), Some(1));
    assert_eq!(q2.steps, vec![]);
    assert_eq!(q2.next_due, Some(day(2026, 7, 1)));

    let rolled = used(7, 0);
    let late = agenda(&seen(&ent, &rolled), &days, day(2027, 12, 25));
    assert_eq!(
        late.notice,
        Some(Notice {
            days_before: 7,
            days_left: 6,
            end_date: day(2027, 12, 31)
        })
    );
    assert_eq!(late.next_due, Some(day(2028, 1, 1)));
    let sent = Observed {
        notices_sent: &[7],
        ..seen(&ent, &rolled)
    };
    assert_eq!(agenda(&sent, &days, day(2027, 12, 25)).notice, None);
    let thirty = Observed {
        notices_sent: &[30],
        ..seen(&ent, &rolled)
    };
    assert_eq!(
        agenda(&thirty, &days, day(2027, 12, 25))
            .notice
            .map(|n| n.days_before),
        Some(7)
    );
    assert_eq!(
        late.notice.unwrap().payload(),
        json!({ "days_before": 7, "days_left": 6, "end_date": "2027-12-31" })
    );
}

#[test]
fn after_downtime_the_expiry_closes_every_period_but_the_last() {
    let mut ent = quarterly(10, 0);
    ent.terms.auto_renew = true;
    let c = used(0, 2);
    let a = agenda(&seen(&ent, &c), &ExpiringSoon::default(), day(2028, 3, 1));
    assert_eq!(a.steps, vec![(Status::Active, Status::Expired)]);
    assert_eq!(a.closed.len(), 7);
    assert_eq!(a.notice, None);
    let last = a.last_period.expect("the expiry reports the last period");
    assert_eq!(
        last.payload(),
        json!({
            "period": { "index": 7, "start": "2027-10-01", "end": "2027-12-31" },
            "total": 10, "carried_in": 0, "used": 0, "unused": 10
        })
    );
    let renewal = a.renewal.expect("auto_renew renews");
    assert_eq!(
        (renewal.start_date, renewal.end_date),
        (day(2028, 1, 1), day(2029, 12, 30))
    );
    assert_eq!(a.next_due, None);
    let renewed = Observed {
        renewed: true,
        ..seen(&ent, &c)
    };
    assert_eq!(
        agenda(&renewed, &ExpiringSoon::default(), day(2028, 3, 1)).renewal,
        None
    );
    ent.terms.auto_renew = false;
    assert_eq!(
        agenda(&seen(&ent, &c), &ExpiringSoon::default(), day(2028, 3, 1)).renewal,
        None
    );
}

#[test]
fn drafts_and_cancelled_entitlements_are_owed_nothing() {
    for status in [Status::Draft, Status::Cancelled] {
        let mut ent = quarterly(10, 0);
        ent.status = status;
        ent.terms.auto_renew = true;
        let c = Counters::default();
        let a = agenda(&seen(&ent, &c), &ExpiringSoon::default(), day(2028, 3, 1));
        assert_eq!(a, Agenda::default());
    }
}

#[test]
fn a_renewal_follows_the_day_after_the_end_for_as_long() {
    let mut old = terms();
    old.start_date = day(2026, 1, 1);
    old.end_date = day(2026, 3, 31);
    old.is_default = true;
    let new = renewal_terms(&old).unwrap();
    assert_eq!(
        (new.start_date, new.end_date),
        (day(2026, 4, 1), day(2026, 6, 29))
    );
    assert!(!new.is_default);
    assert_eq!(new.total, old.total);
    assert_eq!(
        renewal_steps(&new, day(2026, 4, 2)),
        vec![(Status::Draft, Status::Active)]
    );
    assert_eq!(
        renewal_steps(&new, day(2026, 7, 1)),
        vec![
            (Status::Draft, Status::Active),
            (Status::Active, Status::Expired)
        ]
    );
    old.start_date = day(9999, 1, 1);
    old.end_date = day(9999, 12, 31);
    assert_eq!(renewal_terms(&old), None);
}

/// The first quarter of a New York organization closes at local midnight:
/// 04:00 UTC on 1 April (daylight time), while the year's last quarter
/// closes at 05:00 UTC on 1 January (standard time).
#[test]
fn quarters_close_at_local_midnight_across_daylight_saving_time() {
    let ny = parse_zone("America/New_York").unwrap();
    let ent = quarterly(10, 0);
    let days = ExpiringSoon::parse("").unwrap();
    let closed_at = |c: &Counters, h: u32, m: u32, d: (i32, u32, u32)| {
        let now = Utc.with_ymd_and_hms(d.0, d.1, d.2, h, m, 0).unwrap();
        agenda(&seen(&ent, c), &days, today_in(ny, now))
            .closed
            .len()
    };
    let q1 = used(0, 1);
    assert_eq!(closed_at(&q1, 3, 59, (2026, 4, 1)), 0);
    assert_eq!(closed_at(&q1, 4, 0, (2026, 4, 1)), 1);
    let q4 = used(3, 1);
    assert_eq!(closed_at(&q4, 4, 59, (2027, 1, 1)), 0);
    assert_eq!(closed_at(&q4, 5, 0, (2027, 1, 1)), 1);
}

#[test]
fn a_term_that_passed_unseen_is_activated_then_expired() {
    use Status::*;
    assert_eq!(
        status_steps(Waiting, Expired),
        vec![(Waiting, Active), (Active, Expired)]
    );
    assert_eq!(status_steps(Waiting, Active), vec![(Waiting, Active)]);
    assert_eq!(status_steps(Active, Expired), vec![(Active, Expired)]);
    assert_eq!(status_steps(Active, Active), vec![]);
    assert_eq!(status_steps(Expired, Expired), vec![]);
}

#[test]
fn a_whole_term_reports_what_was_left_when_it_ends() {
    let mut t = terms();
    t.rollover = q(0);
    let ent = active(t);
    let c = Counters {
        used: q(12),
        carried: q(1),
        ..Counters::default()
    };
    let days = ExpiringSoon::default();
    assert_eq!(
        agenda(&seen(&ent, &c), &days, day(2026, 12, 31)).last_period,
        None
    );
    let ended = agenda(&seen(&ent, &c), &days, day(2027, 1, 1));
    assert_eq!(
        ended.last_period,
        Some(LastPeriod {
            period: window_of(&ent, 0),
            total: Some(q(20)),
            carried_in: q(1),
            used: q(12),
            unused: Some(q(9)),
        })
    );
    let mut over = c.clone();
    over.used = q(25);
    let overdrawn = agenda(&seen(&ent, &over), &days, day(2027, 1, 1));
    assert_eq!(overdrawn.last_period.and_then(|l| l.unused), Some(q(0)));
    let mut unlimited = ent.clone();
    unlimited.terms.total = None;
    let open = agenda(&seen(&unlimited, &c), &days, day(2027, 1, 1));
    assert_eq!(
        open.last_period.map(|l| (l.total, l.unused)),
        Some((None, None))
    );
}
