use std::collections::HashMap;

use allot_core::batch::{EntitlementState, Op};
use allot_core::decide::{Change, Reason};
use allot_core::entitlement::{DecrementOn, Entitlement, Period, Status, Terms, Unit};
use allot_core::{Counters, Quantity};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::*;
use crate::audit;

fn ent(id: &str, total: i64) -> EntitlementState {
    let terms = Terms {
        account_id: "acc_1".into(),
        name: "Visits".into(),
        description: None,
        owner: None,
        owner_email: None,
        unit: Unit::Visits,
        total: Some(Quantity::whole(total)),
        period: Period::None,
        rollover: Quantity::ZERO,
        restrict: true,
        decrement_on: DecrementOn::Creation,
        start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        channels: vec![],
        product_ids: vec![],
        contact_ids: vec![],
        is_default: false,
        pooled: false,
        alert_thresholds: vec![],
        rounding: None,
        auto_renew: false,
        contract_id: None,
        contract_line_id: None,
        template_id: None,
        sla: None,
    };
    EntitlementState {
        entitlement: Entitlement {
            id: id.into(),
            terms,
            status: Status::Active,
            predecessor_id: None,
        },
        counters: Counters::default(),
    }
}

fn usage(id: &str, key: Option<(&str, &str)>) -> BatchItem {
    BatchItem {
        command: Command::Ledger {
            ops: vec![Op {
                entitlement_id: id.into(),
                change: Change::Consume {
                    quantity: Quantity::whole(1),
                    channel: None,
                    reason: Reason::Visit,
                    reference: None,
                },
            }],
        },
        actor: "key_1".into(),
        idempotency: key.map(|(k, fp)| IdemKey {
            scope: "key_1".into(),
            key: k.into(),
            fingerprint: fp.into(),
        }),
        render: Render::OUTCOME_JSON,
    }
}

fn loaded(total: i64) -> Loaded {
    Loaded {
        entitlements: HashMap::from([("ent_1".into(), ent("ent_1", total))]),
        ..Default::default()
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
}

#[test]
fn items_are_decided_in_arrival_order_against_the_cap() {
    let mut l = loaded(2);
    let items: Vec<BatchItem> = (0..4).map(|_| usage("ent_1", None)).collect();
    let plan = plan_batch(&mut l, &items, today(), Utc::now());
    let applied = plan
        .answers
        .iter()
        .map(|a| {
            matches!(
                a,
                ItemAnswer::Done {
                    outcome: Outcome::Applied { .. },
                    ..
                }
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(applied, vec![true, true, false, false]);
    assert_eq!(plan.ledger.len(), 2);
    assert_eq!(
        plan.counters,
        vec![(
            "ent_1".to_string(),
            Counters {
                used: Quantity::whole(2),
                ..Default::default()
            }
        )]
    );
}

#[test]
fn a_key_used_twice_in_a_batch_applies_once() {
    let mut l = loaded(10);
    let items = vec![
        usage("ent_1", Some(("k", "fp"))),
        usage("ent_1", Some(("k", "fp"))),
        usage("ent_1", Some(("k", "other"))),
    ];
    let plan = plan_batch(&mut l, &items, today(), Utc::now());
    assert_eq!(plan.ledger.len(), 1);
    assert_eq!(plan.keys.len(), 1);
    assert_eq!(plan.answers[2], ItemAnswer::KeyMismatch);
    let (ItemAnswer::Done { outcome }, ItemAnswer::Replayed { answer }) =
        (&plan.answers[0], &plan.answers[1])
    else {
        panic!("expected done then replayed: {:?}", plan.answers)
    };
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    assert_eq!(*answer, Render::OUTCOME_JSON.answer(outcome.clone()));
}

#[test]
fn a_stored_key_replays_its_answer() {
    let mut l = loaded(10);
    let first = plan_batch(
        &mut l,
        &[usage("ent_1", Some(("k", "fp")))],
        today(),
        Utc::now(),
    );
    let stored = first.keys[0].clone();
    let mut l2 = loaded(10);
    l2.keys.insert(
        ("key_1".into(), "k".into()),
        IdempotencyRecord {
            fingerprint: stored.fingerprint,
            answer: Some(stored.answer),
            created_at: Utc::now(),
        },
    );
    let again = plan_batch(
        &mut l2,
        &[usage("ent_1", Some(("k", "fp")))],
        today(),
        Utc::now(),
    );
    assert!(again.ledger.is_empty() && again.counters.is_empty());
    let ItemAnswer::Replayed { answer } = &again.answers[0] else {
        panic!("not replayed: {:?}", again.answers)
    };
    let ItemAnswer::Done { outcome: original } = &first.answers[0] else {
        panic!("not applied: {:?}", first.answers)
    };
    assert_eq!(*answer, Render::OUTCOME_JSON.answer(original.clone()));
}

#[test]
fn holds_commit_and_expire() {
    let mut l = loaded(3);
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let hold = |id: &str, n: i64| BatchItem {
        command: Command::Hold {
            reservation_id: id.into(),
            entitlement_id: "ent_1".into(),
            quantity: Quantity::whole(n),
            channel: None,
            reference: None,
            expires_at: now + chrono::Duration::seconds(60),
        },
        actor: "key_1".into(),
        idempotency: None,
        render: Render::OUTCOME_JSON,
    };
    let plan = plan_batch(
        &mut l,
        &[hold("res_1", 2), hold("res_2", 2), usage("ent_1", None)],
        today(),
        now,
    );
    assert!(matches!(
        plan.answers[1],
        ItemAnswer::Done {
            outcome: Outcome::Refused { .. },
            ..
        }
    ));
    assert!(matches!(
        plan.answers[2],
        ItemAnswer::Done {
            outcome: Outcome::Applied { .. },
            ..
        }
    ));
    assert_eq!(plan.reservations.len(), 1);
    let commit = BatchItem {
        command: Command::Commit {
            reservation_id: "res_1".into(),
            actual: Some(Quantity::whole(1)),
        },
        actor: "key_1".into(),
        idempotency: None,
        render: Render::OUTCOME_JSON,
    };
    let expire = BatchItem {
        command: Command::Expire {
            reservation_id: "res_1".into(),
        },
        actor: "system".into(),
        idempotency: None,
        render: Render::OUTCOME_JSON,
    };
    let plan = plan_batch(
        &mut l,
        &[commit, expire],
        today(),
        now + chrono::Duration::seconds(120),
    );
    assert!(matches!(
        plan.answers[1],
        ItemAnswer::Done {
            outcome: Outcome::ReservationRefused { .. },
            ..
        }
    ));
    let c = &l.entitlements["ent_1"].counters;
    assert_eq!((c.used, c.held), (Quantity::whole(2), Quantity::ZERO));
    assert_eq!(plan.reservations[0].status, ReservationStatus::Committed);
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, h, m, s).unwrap()
}

fn outcome(answer: &ItemAnswer) -> &Outcome {
    match answer {
        ItemAnswer::Done { outcome } => outcome,
        other => panic!("expected a fresh answer, got {other:?}"),
    }
}

fn applied(answer: &ItemAnswer) -> (&[LedgerEntry], &[Balance], Option<&Reservation>) {
    match outcome(answer) {
        Outcome::Applied {
            entries,
            balances,
            reservation,
            ..
        } => (entries, balances, reservation.as_deref()),
        other => panic!("expected applied, got {other:?}"),
    }
}

fn item(command: Command) -> BatchItem {
    BatchItem {
        command,
        actor: "key_1".into(),
        idempotency: None,
        render: Render::OUTCOME_JSON,
    }
}

fn hold_item(id: &str, n: i64, expires_at: DateTime<Utc>) -> BatchItem {
    item(Command::Hold {
        reservation_id: id.into(),
        entitlement_id: "ent_1".into(),
        quantity: Quantity::whole(n),
        channel: None,
        reference: None,
        expires_at,
    })
}

fn held_reservation(id: &str, n: i64, expires_at: DateTime<Utc>) -> Reservation {
    Reservation {
        id: id.into(),
        entitlement_id: "ent_1".into(),
        quantity: Quantity::whole(n),
        channel: None,
        reference: None,
        status: ReservationStatus::Held,
        expires_at,
        created_at: at(11, 0, 0),
        settled_at: None,
        committed_quantity: None,
    }
}

/// `ent_1` with `n` held by reservation `res_1`, expiring at noon.
fn loaded_with_hold(total: i64, n: i64) -> Loaded {
    let mut l = loaded(total);
    l.entitlements.get_mut("ent_1").unwrap().counters.held = Quantity::whole(n);
    l.reservations
        .insert("res_1".into(), held_reservation("res_1", n, at(12, 0, 0)));
    l
}

#[test]
fn reservation_statuses_round_trip() {
    for status in [
        ReservationStatus::Held,
        ReservationStatus::Committed,
        ReservationStatus::Released,
        ReservationStatus::Expired,
    ] {
        assert_eq!(ReservationStatus::parse(status.as_str()), Some(status));
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::json!(status.as_str())
        );
    }
    assert_eq!(ReservationStatus::parse("pending"), None);
}

#[test]
fn the_rows_to_load_are_named_by_the_items() {
    let visit = |ent: &str, r: &str, reason: Reason| Op {
        entitlement_id: ent.into(),
        change: Change::Consume {
            quantity: Quantity::whole(1),
            channel: None,
            reason,
            reference: Some(r.into()),
        },
    };
    let case = |id: &str, ent: Option<&str>| CaseRecord {
        state: CaseState::new(id, ent.map(String::from), None, false),
        account_id: "acc_1".into(),
        contact_id: None,
        product_id: None,
        title: "t".into(),
        time_notes: vec![],
        created_at: at(9, 0, 0),
        updated_at: at(9, 0, 0),
        deleted_at: None,
    };
    let mut keyed = usage("ent_9", Some(("k1", "fp")));
    keyed.command = Command::Ledger {
        ops: vec![
            visit("ent_1", "WO-1", Reason::Visit),
            visit("ent_2", "CASE", Reason::CaseOpened),
        ],
    };
    let items = vec![
        keyed,
        hold_item("res_h", 1, at(12, 0, 0)),
        item(Command::Commit {
            reservation_id: "res_c".into(),
            actual: None,
        }),
        item(Command::Release {
            reservation_id: "res_r".into(),
        }),
        BatchItem {
            idempotency: Some(IdemKey {
                scope: "key_2".into(),
                key: "k2".into(),
                fingerprint: "fp".into(),
            }),
            ..item(Command::Expire {
                reservation_id: "res_x".into(),
            })
        },
        item(Command::OpenCase {
            case: Box::new(case("case_new", Some("ent_3"))),
            matching: CaseMatching::Given,
        }),
        item(Command::Case {
            case_id: "case_1".into(),
            action: CaseAction::Move {
                to: Some("ent_5".into()),
            },
            note: None,
        }),
        item(Command::Case {
            case_id: "case_2".into(),
            action: CaseAction::Resolve,
            note: None,
        }),
    ];
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(reservation_ids(&items), set(&["res_c", "res_r", "res_x"]));
    assert_eq!(case_ids(&items), set(&["case_1", "case_2"]));
    let reservations = HashMap::from([
        (
            "res_c".to_string(),
            Reservation {
                entitlement_id: "ent_6".into(),
                ..held_reservation("res_c", 1, at(12, 0, 0))
            },
        ),
        (
            "res_x".to_string(),
            Reservation {
                entitlement_id: "ent_7".into(),
                ..held_reservation("res_x", 1, at(12, 0, 0))
            },
        ),
    ]);
    let cases = HashMap::from([("case_1".to_string(), case("case_1", Some("ent_4")))]);
    assert_eq!(
        entitlement_ids(&items, &reservations, &cases),
        set(&["ent_1", "ent_2", "ent_3", "ent_4", "ent_5", "ent_6", "ent_7"])
    );
    assert_eq!(
        usage_references(&items),
        BTreeSet::from([("ent_1".to_string(), "WO-1".to_string())])
    );
    assert_eq!(
        idempotency_keys(&items),
        BTreeSet::from([
            ("key_1".to_string(), "k1".to_string()),
            ("key_2".to_string(), "k2".to_string())
        ])
    );
}

#[test]
fn one_command_on_one_entitlement_answers_one_balance() {
    let mut l = loaded(10);
    let mut twice = usage("ent_1", None);
    let Command::Ledger { ops } = &mut twice.command else {
        unreachable!()
    };
    ops.push(ops[0].clone());
    let plan = plan_batch(&mut l, &[twice], today(), at(10, 0, 0));
    let (entries, balances, _) = applied(&plan.answers[0]);
    assert_eq!(entries.len(), 2);
    assert_eq!(balances.len(), 1);
    assert_eq!(balances[0].used, Quantity::whole(2));
    assert_eq!(balances[0].remaining, Some(Quantity::whole(8)));
    assert_eq!(
        plan.ledger
            .iter()
            .map(|e| (e.entitlement_id.as_str(), e.quantity, e.actor.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("ent_1", Quantity::whole(1), "key_1"),
            ("ent_1", Quantity::whole(1), "key_1")
        ]
    );
}

#[test]
fn a_refused_item_writes_nothing_and_is_not_audited() {
    let mut l = loaded(1);
    let plan = plan_batch(
        &mut l,
        &[usage("ent_1", None), usage("ent_1", None)],
        today(),
        at(10, 0, 0),
    );
    assert!(matches!(
        outcome(&plan.answers[1]),
        Outcome::Refused {
            refusal: allot_core::Refusal::EntitlementExhausted { .. }
        }
    ));
    assert_eq!(plan.ledger.len(), 1);
    assert_eq!(plan.audit.len(), 1);
    let audit = &plan.audit[0];
    assert_eq!(
        (
            audit.action.as_str(),
            audit.target_type.as_str(),
            audit.target_id.as_str()
        ),
        ("usage.record", "entitlement", "ent_1")
    );
    assert_eq!(audit.before, audit::snapshot(&Counters::default()));
    assert_eq!(
        audit.after,
        audit::snapshot(&Counters {
            used: Quantity::whole(1),
            ..Default::default()
        })
    );
}

#[test]
fn events_are_written_with_their_entitlement() {
    let mut l = loaded(1);
    let now = at(10, 0, 0);
    let plan = plan_batch(&mut l, &[usage("ent_1", None)], today(), now);
    assert_eq!(plan.events.len(), 1);
    let e = &plan.events[0];
    assert_eq!(
        (e.kind.as_str(), e.entitlement_id.as_deref(), e.created_at),
        ("entitlement.exhausted", Some("ent_1"), now)
    );
    assert_eq!(e.data, serde_json::json!({ "remaining": 0 }));
    assert!(e.id.starts_with("evt_"));
}

#[test]
fn a_hold_is_written_and_audited_as_a_reservation() {
    let mut l = loaded(3);
    let now = at(10, 0, 0);
    let plan = plan_batch(&mut l, &[hold_item("res_1", 2, at(12, 0, 0))], today(), now);
    let expected = Reservation {
        created_at: now,
        ..held_reservation("res_1", 2, at(12, 0, 0))
    };
    let (entries, balances, reservation) = applied(&plan.answers[0]);
    assert!(entries.is_empty());
    assert_eq!(balances[0].held, Quantity::whole(2));
    assert_eq!(reservation, Some(&expected));
    assert_eq!(plan.reservations, vec![expected.clone()]);
    assert_eq!(l.reservations["res_1"], expected);
    let audit = &plan.audit[0];
    assert_eq!(
        (
            audit.action.as_str(),
            audit.target_type.as_str(),
            audit.target_id.as_str()
        ),
        ("reservation.hold", "reservation", "res_1")
    );
    assert_eq!(audit.before, None);
    assert_eq!(audit.after, audit::snapshot(&expected));
}

#[test]
fn committing_settles_the_reservation_with_the_amount_used() {
    let mut l = loaded_with_hold(10, 3);
    let now = at(10, 0, 0);
    let commit = item(Command::Commit {
        reservation_id: "res_1".into(),
        actual: Some(Quantity::whole(2)),
    });
    let plan = plan_batch(&mut l, std::slice::from_ref(&commit), today(), now);
    let settled = Reservation {
        status: ReservationStatus::Committed,
        settled_at: Some(now),
        committed_quantity: Some(Quantity::whole(2)),
        ..held_reservation("res_1", 3, at(12, 0, 0))
    };
    assert_eq!(plan.reservations, vec![settled.clone()]);
    let (entries, _, _) = applied(&plan.answers[0]);
    assert_eq!(entries[0].quantity, Quantity::whole(2));
    assert_eq!(entries[0].reference.as_deref(), Some("res_1"));
    let c = &l.entitlements["ent_1"].counters;
    assert_eq!((c.used, c.held), (Quantity::whole(2), Quantity::ZERO));
    let audit = &plan.audit[0];
    assert_eq!(audit.action, "reservation.commit");
    assert_eq!(
        audit.before,
        audit::snapshot(&held_reservation("res_1", 3, at(12, 0, 0)))
    );
    assert_eq!(audit.after, audit::snapshot(&settled));
    // A settled reservation cannot be committed again.
    let again = plan_batch(&mut l, &[commit], today(), now);
    assert_eq!(
        outcome(&again.answers[0]),
        &Outcome::ReservationRefused {
            refusal: ReservationRefusal::ReservationSettled {
                reservation_id: "res_1".into(),
                status: "committed".into(),
            }
        }
    );
    let missing = plan_batch(
        &mut l,
        &[item(Command::Release {
            reservation_id: "res_9".into(),
        })],
        today(),
        now,
    );
    assert_eq!(
        outcome(&missing.answers[0]),
        &Outcome::ReservationRefused {
            refusal: ReservationRefusal::ReservationNotFound {
                reservation_id: "res_9".into(),
            }
        }
    );
}

#[test]
fn releasing_before_expiry_is_allowed_and_raises_no_event() {
    let mut l = loaded_with_hold(10, 3);
    let now = at(11, 0, 0);
    let plan = plan_batch(
        &mut l,
        &[item(Command::Release {
            reservation_id: "res_1".into(),
        })],
        today(),
        now,
    );
    assert_eq!(
        plan.reservations,
        vec![Reservation {
            status: ReservationStatus::Released,
            settled_at: Some(now),
            ..held_reservation("res_1", 3, at(12, 0, 0))
        }]
    );
    assert!(plan.events.is_empty());
    assert_eq!(l.entitlements["ent_1"].counters.held, Quantity::ZERO);
    assert_eq!(plan.audit[0].action, "reservation.release");
}

#[test]
fn a_hold_expires_at_its_expiry_time_and_not_before() {
    let expire = item(Command::Expire {
        reservation_id: "res_1".into(),
    });
    let mut early = loaded_with_hold(10, 3);
    let plan = plan_batch(
        &mut early,
        std::slice::from_ref(&expire),
        today(),
        at(11, 59, 59),
    );
    assert_eq!(
        outcome(&plan.answers[0]),
        &Outcome::ReservationRefused {
            refusal: ReservationRefusal::ReservationSettled {
                reservation_id: "res_1".into(),
                status: "held".into(),
            }
        }
    );
    assert!(plan.reservations.is_empty() && plan.events.is_empty());
    let mut due = loaded_with_hold(10, 3);
    let now = at(12, 0, 0);
    let plan = plan_batch(&mut due, &[expire], today(), now);
    assert_eq!(
        plan.reservations,
        vec![Reservation {
            status: ReservationStatus::Expired,
            settled_at: Some(now),
            ..held_reservation("res_1", 3, at(12, 0, 0))
        }]
    );
    assert_eq!(plan.events.len(), 1);
    assert_eq!(plan.events[0].kind, "reservation.expired");
    assert_eq!(
        plan.events[0].data,
        serde_json::json!({ "reservation_id": "res_1", "quantity": 3 })
    );
    assert_eq!(due.entitlements["ent_1"].counters.held, Quantity::ZERO);
    assert_eq!(plan.audit[0].action, "reservation.expire");
}

fn cases_ent(id: &str) -> EntitlementState {
    let mut e = ent(id, 10);
    e.entitlement.terms.unit = Unit::Hours;
    e
}

fn stored_case(deleted: bool) -> CaseRecord {
    let mut state = CaseState::new("case_1", Some("ent_1".into()), None, false);
    state.time_entries.push(allot_core::cases::TimeEntry {
        id: "t1".into(),
        logged: Quantity::whole(1),
        hours: Quantity::whole(1),
        charged: true,
    });
    CaseRecord {
        state,
        account_id: "acc_1".into(),
        contact_id: None,
        product_id: None,
        title: "Printer".into(),
        time_notes: vec![TimeNote {
            entry_id: "t1".into(),
            actor: "key_1".into(),
            at: at(9, 0, 0),
            note: Some("first".into()),
        }],
        created_at: at(9, 0, 0),
        updated_at: at(9, 0, 0),
        deleted_at: deleted.then(|| at(9, 30, 0)),
    }
}

fn loaded_with_case(deleted: bool) -> Loaded {
    let mut l = Loaded {
        entitlements: HashMap::from([("ent_1".into(), cases_ent("ent_1"))]),
        ..Default::default()
    };
    l.entitlements.get_mut("ent_1").unwrap().counters.used = Quantity::whole(1);
    l.cases.insert("case_1".into(), stored_case(deleted));
    l
}

fn case_item(action: CaseAction, note: Option<TimeNote>) -> BatchItem {
    item(Command::Case {
        case_id: "case_1".into(),
        action,
        note,
    })
}

#[test]
fn logging_time_keeps_its_note_and_deleting_it_drops_the_note() {
    let mut l = loaded_with_case(false);
    let now = at(10, 0, 0);
    let note = TimeNote {
        entry_id: "t2".into(),
        actor: "key_1".into(),
        at: now,
        note: Some("second".into()),
    };
    let log = case_item(
        CaseAction::LogTime {
            entry_id: "t2".into(),
            hours: Quantity::whole(2),
        },
        Some(note.clone()),
    );
    let plan = plan_batch(&mut l, &[log], today(), now);
    let (entries, balances, _) = applied(&plan.answers[0]);
    assert_eq!(entries[0].quantity, Quantity::whole(2));
    assert_eq!(balances[0].used, Quantity::whole(3));
    assert_eq!(plan.cases.len(), 1);
    let notes: Vec<&str> = plan.cases[0]
        .time_notes
        .iter()
        .map(|n| n.entry_id.as_str())
        .collect();
    assert_eq!(notes, vec!["t1", "t2"]);
    assert_eq!(plan.cases[0].updated_at, now);
    assert_eq!(plan.audit[0].action, "case.log_time");
    assert_eq!(plan.audit[0].target_type, "case");
    let delete = case_item(
        CaseAction::DeleteTime {
            entry_id: "t1".into(),
        },
        None,
    );
    let plan = plan_batch(&mut l, &[delete], today(), now);
    let notes: Vec<&str> = plan.cases[0]
        .time_notes
        .iter()
        .map(|n| n.entry_id.as_str())
        .collect();
    assert_eq!(notes, vec!["t2"]);
    assert_eq!(l.entitlements["ent_1"].counters.used, Quantity::whole(2));
}

#[test]
fn a_case_answer_shows_its_balance_even_when_nothing_is_charged() {
    let mut l = loaded_with_case(false);
    let mut visits = ent("ent_1", 10);
    visits.counters.used = Quantity::whole(4);
    l.entitlements.insert("ent_1".into(), visits);
    let mut case = stored_case(false);
    case.state.time_entries.clear();
    l.cases.insert("case_1".into(), case);
    let plan = plan_batch(
        &mut l,
        &[case_item(CaseAction::Resolve, None)],
        today(),
        at(10, 0, 0),
    );
    let (entries, balances, _) = applied(&plan.answers[0]);
    assert!(entries.is_empty());
    assert_eq!(balances.len(), 1);
    assert_eq!(
        (balances[0].entitlement_id.as_str(), balances[0].used),
        ("ent_1", Quantity::whole(4))
    );
}

#[test]
fn a_deleted_or_unknown_case_is_missing() {
    for (mut l, id) in [
        (loaded_with_case(true), "case_1"),
        (loaded_with_case(false), "case_9"),
    ] {
        let plan = plan_batch(
            &mut l,
            &[item(Command::Case {
                case_id: id.into(),
                action: CaseAction::Resolve,
                note: None,
            })],
            today(),
            at(10, 0, 0),
        );
        assert_eq!(
            outcome(&plan.answers[0]),
            &Outcome::CaseMissing { case_id: id.into() }
        );
        assert!(plan.cases.is_empty() && plan.audit.is_empty());
    }
    let mut l = loaded_with_case(false);
    let now = at(10, 0, 0);
    let plan = plan_batch(&mut l, &[case_item(CaseAction::Delete, None)], today(), now);
    assert_eq!(plan.cases[0].deleted_at, Some(now));
    assert_eq!(l.entitlements["ent_1"].counters.used, Quantity::whole(1));
}

#[test]
fn a_key_claimed_but_not_answered_applies_once_for_its_own_request() {
    for (fingerprint, expect_applied) in [("fp", true), ("other", false)] {
        let mut l = loaded(10);
        l.keys.insert(
            ("key_1".into(), "k".into()),
            IdempotencyRecord {
                fingerprint: fingerprint.into(),
                answer: None,
                created_at: at(9, 0, 0),
            },
        );
        let plan = plan_batch(
            &mut l,
            &[usage("ent_1", Some(("k", "fp")))],
            today(),
            at(10, 0, 0),
        );
        if expect_applied {
            applied(&plan.answers[0]);
            assert_eq!(plan.keys.len(), 1);
            assert_eq!(plan.ledger.len(), 1);
        } else {
            assert_eq!(plan.answers, vec![ItemAnswer::KeyMismatch]);
            assert!(plan.keys.is_empty() && plan.ledger.is_empty());
        }
    }
}

#[test]
fn renders_compare_by_function_and_print_without_their_address() {
    fn other(_: Outcome) -> StoredAnswer {
        StoredAnswer {
            status: 204,
            body: String::new(),
        }
    }
    assert_eq!(Render::OUTCOME_JSON, Render::OUTCOME_JSON);
    assert_ne!(Render::OUTCOME_JSON, Render(other));
    assert_eq!(format!("{:?}", Render(other)), "Render");
}

fn case_to_match(account: &str) -> BatchItem {
    let mut record = stored_case(false);
    record.state = CaseState::new("case_new", None, None, false);
    record.account_id = account.into();
    record.time_notes.clear();
    item(Command::OpenCase {
        case: Box::new(record),
        matching: CaseMatching::Best {
            ancestors: vec!["acc_parent".into()],
        },
    })
}

fn ent_of(id: &str, account: &str, end_month: u32, pooled: bool) -> EntitlementState {
    let mut e = ent(id, 10);
    e.entitlement.terms.unit = Unit::Cases;
    e.entitlement.terms.account_id = account.into();
    e.entitlement.terms.pooled = pooled;
    e.entitlement.terms.end_date = NaiveDate::from_ymd_opt(2026, end_month, 28).unwrap();
    e
}

fn matched(l: &mut Loaded) -> Option<String> {
    let plan = plan_batch(l, &[case_to_match("acc_1")], today(), at(10, 0, 0));
    let Outcome::Applied { case, warnings, .. } = outcome(&plan.answers[0]) else {
        panic!("{:?}", plan.answers)
    };
    assert!(warnings.is_empty(), "{warnings:?}");
    case.as_ref().unwrap().state.entitlement_id.clone()
}

#[test]
fn matching_chooses_under_the_locks_among_the_account_and_its_pooled_ancestors() {
    let mut l = Loaded {
        entitlements: HashMap::from([
            // Another account's, ending soonest: never a candidate.
            (
                "ent_other".into(),
                ent_of("ent_other", "acc_other", 7, true),
            ),
            ("ent_late".into(), ent_of("ent_late", "acc_1", 12, false)),
            ("ent_soon".into(), ent_of("ent_soon", "acc_1", 9, false)),
            ("ent_pool".into(), ent_of("ent_pool", "acc_parent", 8, true)),
        ]),
        ..Default::default()
    };
    assert_eq!(
        matching_accounts(&[case_to_match("acc_1")]),
        BTreeSet::from(["acc_1".to_string(), "acc_parent".to_string()])
    );
    // The account's own, ending soonest, before the parent's pool.
    assert_eq!(matched(&mut l).as_deref(), Some("ent_soon"));
    assert_eq!(l.entitlements["ent_soon"].counters.used, Quantity::whole(1));
    assert_eq!(l.entitlements["ent_late"].counters.used, Quantity::ZERO);
    // Without its own, the parent's pool covers it; never another account's.
    l.entitlements.remove("ent_soon");
    l.entitlements.remove("ent_late");
    assert_eq!(matched(&mut l).as_deref(), Some("ent_pool"));
    assert_eq!(l.entitlements["ent_other"].counters.used, Quantity::ZERO);
}

#[test]
fn a_case_nothing_covers_opens_without_an_entitlement_and_says_so() {
    let mut l = Loaded {
        entitlements: HashMap::from([(
            "ent_other".into(),
            ent_of("ent_other", "acc_other", 7, true),
        )]),
        ..Default::default()
    };
    let given = item(Command::OpenCase {
        case: Box::new(stored_case(false)),
        matching: CaseMatching::Given,
    });
    assert!(matching_accounts(std::slice::from_ref(&given)).is_empty());
    let plan = plan_batch(&mut l, &[case_to_match("acc_1")], today(), at(10, 0, 0));
    let Outcome::Applied { case, warnings, .. } = outcome(&plan.answers[0]) else {
        panic!("{:?}", plan.answers)
    };
    assert_eq!(case.as_ref().unwrap().state.entitlement_id, None);
    assert_eq!(warnings, &[NOTHING_COVERS.to_string()]);
    assert!(plan.ledger.is_empty());
}

#[test]
fn a_revoked_keys_items_are_refused_whole_and_the_others_applied() {
    let mut l = loaded(10);
    l.revoked_actors.insert("key_1".into());
    let mut other = usage("ent_1", None);
    other.actor = "key_2".into();
    let items = vec![usage("ent_1", Some(("k", "fp"))), other];
    let plan = plan_batch(&mut l, &items, today(), Utc::now());
    assert_eq!(plan.answers[0], ItemAnswer::KeyRevoked);
    applied(&plan.answers[1]);
    assert_eq!(plan.ledger.len(), 1, "only the live key's use");
    assert!(plan.keys.is_empty(), "nothing stored under the revoked key");
    assert_eq!(plan.audit.len(), 1);
    assert_eq!(plan.audit[0].actor, "key_2");
    assert_eq!(l.entitlements["ent_1"].counters.used, Quantity::whole(1));
}

#[test]
fn a_revoked_key_gets_no_replay_of_what_it_was_answered_before() {
    let mut l = loaded(10);
    let first = plan_batch(
        &mut l,
        &[usage("ent_1", Some(("k", "fp")))],
        today(),
        at(9, 0, 0),
    );
    applied(&first.answers[0]);
    let stored = &first.keys[0];
    l.keys.insert(
        ("key_1".into(), "k".into()),
        IdempotencyRecord {
            fingerprint: stored.fingerprint.clone(),
            answer: Some(stored.answer.clone()),
            created_at: at(9, 0, 0),
        },
    );
    l.revoked_actors.insert("key_1".into());
    let plan = plan_batch(
        &mut l,
        &[usage("ent_1", Some(("k", "fp")))],
        today(),
        at(10, 0, 0),
    );
    assert_eq!(plan.answers[0], ItemAnswer::KeyRevoked);
}

#[test]
fn the_batchs_actors_are_each_one_once() {
    let mut other = usage("ent_1", None);
    other.actor = "key_2".into();
    let items = vec![usage("ent_1", None), other, usage("ent_1", None)];
    let actors: Vec<String> = actors(&items).into_iter().collect();
    assert_eq!(actors, vec!["key_1".to_string(), "key_2".to_string()]);
}

#[test]
fn an_items_contended_row_is_what_it_locks_first() {
    assert_eq!(contended_row(&usage("ent_7", None).command), "ent_7");
    let hold = hold_item("res_1", 1, at(12, 0, 0));
    assert_eq!(contended_row(&hold.command), "ent_1");
    let commit = Command::Commit {
        reservation_id: "res_1".into(),
        actual: None,
    };
    assert_eq!(contended_row(&commit), "res_1");
    let case = case_item(CaseAction::Delete, None);
    assert_eq!(contended_row(&case.command), "case_1");
}
