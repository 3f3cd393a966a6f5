//! Micro-benchmarks of the hot path's pure decisions, so a regression is
//! visible without a server: `cargo bench -p allot-core`.

use std::collections::HashMap;

use allot_core::balance::{balance, Counters};
use allot_core::batch::{decide_command, EntitlementState, Op};
use allot_core::decide::{decide, Change, Reason};
use allot_core::entitlement::{ChannelTerm, DecrementOn, Entitlement, Period, Status, Terms, Unit};
use allot_core::Quantity;
use chrono::NaiveDate;

fn main() {
    divan::main();
}

fn entitlement(channels: bool) -> Entitlement {
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let terms = Terms {
        account_id: "acc_1".into(),
        name: "Support".into(),
        description: None,
        owner: None,
        owner_email: None,
        unit: Unit::Hours,
        total: Some(Quantity::whole(1_000_000)),
        period: Period::Month,
        rollover: Quantity::whole(10),
        restrict: true,
        decrement_on: DecrementOn::Creation,
        start_date: day(1, 1),
        end_date: day(12, 31),
        channels: if channels {
            vec![ChannelTerm {
                channel: "phone".into(),
                total: Quantity::whole(500_000),
            }]
        } else {
            vec![]
        },
        product_ids: vec![],
        contact_ids: vec![],
        is_default: false,
        pooled: false,
        alert_thresholds: vec![allot_core::entitlement::AlertThreshold::PercentUsed(80)],
        rounding: Some("0.25".parse().unwrap()),
        auto_renew: false,
        contract_id: None,
        contract_line_id: None,
        template_id: None,
        sla: None,
    };
    Entitlement {
        id: "ent_1".into(),
        terms,
        status: Status::Active,
        predecessor_id: None,
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

fn consume(channel: Option<&str>) -> Change {
    Change::Consume {
        quantity: "1.1".parse().unwrap(),
        channel: channel.map(str::to_string),
        reason: Reason::Usage,
        reference: None,
    }
}

#[divan::bench(args = [false, true])]
fn decide_one_use(bencher: divan::Bencher, channels: bool) {
    let ent = entitlement(channels);
    let counters = Counters {
        period_index: 5,
        used: Quantity::whole(100),
        ..Default::default()
    };
    let change = consume(channels.then_some("phone"));
    bencher.bench(|| {
        decide(
            divan::black_box(&ent),
            divan::black_box(&counters),
            &change,
            today(),
        )
    });
}

/// A whole batch of 64 uses on one hot entitlement, as the write path decides it.
#[divan::bench]
fn decide_batch_of_64_on_one_entitlement(bencher: divan::Bencher) {
    let state = EntitlementState {
        entitlement: entitlement(false),
        counters: Counters {
            period_index: 5,
            ..Default::default()
        },
    };
    let op = Op {
        entitlement_id: "ent_1".into(),
        change: consume(None),
    };
    bencher.bench(|| {
        let mut states = HashMap::from([("ent_1".to_string(), state.clone())]);
        for _ in 0..64 {
            let _ = decide_command(&mut states, std::slice::from_ref(&op), today());
        }
        states
    });
}

#[divan::bench]
fn balance_read(bencher: divan::Bencher) {
    let ent = entitlement(true);
    let counters = Counters {
        period_index: 4,
        used: Quantity::whole(100),
        ..Default::default()
    };
    bencher.bench(|| balance(divan::black_box(&ent), divan::black_box(&counters), today()));
}

#[divan::bench]
fn parse_quantity_from_json(bencher: divan::Bencher) {
    let value = serde_json::json!(12.375);
    bencher.bench(|| Quantity::from_json(divan::black_box(&value)));
}
