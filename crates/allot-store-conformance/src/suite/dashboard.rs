//! The dashboard's reads.

use allot_core::lifecycle::Action;
use allot_store::dashboard::MAX_RECENT_EVENTS;
use chrono::Duration;

use crate::fixtures::*;
use crate::TestDatabase;

pub async fn recent_events_are_newest_first_and_bounded(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    assert!(s.recent_events(10).await.unwrap().is_empty());
    add_account(s, "acc_1", None).await;
    let mut t = terms("acc_1", Some(10));
    t.start_date = day(2026, 4, 1);
    t.end_date = day(2026, 4, 30);
    add_draft(s, "ent_1", t).await;
    transition(s, "ent_1", Action::Activate, &actor("m"), "", now())
        .await
        .unwrap();
    let later = now() + Duration::seconds(1);
    transition(s, "ent_1", Action::Cancel, &actor("m"), "", later)
        .await
        .unwrap();
    let oldest_first = s.list_events(None, &all()).await.unwrap();
    assert_eq!(oldest_first.len(), 2);
    let newest = s.recent_events(10).await.unwrap();
    let kinds: Vec<_> = newest.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["entitlement.cancelled", "entitlement.waiting"]);
    assert_eq!(newest[1], oldest_first[0]);
    let one = s.recent_events(1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].kind, "entitlement.cancelled");
    assert!(s.recent_events(0).await.unwrap().is_empty());
    assert!(s.recent_events(u32::MAX).await.unwrap().len() <= MAX_RECENT_EVENTS as usize);
}

pub async fn account_search_matches_name_or_id_in_any_case_and_pages(db: &TestDatabase) {
    let store = db.store();
    let s = store.as_ref();
    for (id, name) in [
        ("acc_1", "Acme Widgets"),
        ("acc_2", "Beta ACME"),
        ("acc_3", "Gamma 100% Ltd"),
        ("acc_4", "Delta_Co"),
        ("acc_acme", "Epsilon"),
    ] {
        let mut a = account(id, None);
        a.name = name.into();
        insert_account(s, &a, &tester()).await.unwrap();
    }
    let ids = |rows: Vec<allot_store::model::Account>| -> Vec<String> {
        rows.into_iter().map(|a| a.id).collect()
    };
    // Name or id, any case, in id order.
    let acme = s.search_accounts("aCMe", &all()).await.unwrap();
    assert_eq!(ids(acme), ["acc_1", "acc_2", "acc_acme"]);
    // Pages from the cursor.
    let first = s.search_accounts("acme", &page(None, 2)).await.unwrap();
    assert_eq!(ids(first), ["acc_1", "acc_2"]);
    let next = s
        .search_accounts("acme", &page(Some("acc_2"), 2))
        .await
        .unwrap();
    assert_eq!(ids(next), ["acc_acme"]);
    // LIKE's wildcards are plain characters.
    assert_eq!(
        ids(s.search_accounts("%", &all()).await.unwrap()),
        ["acc_3"]
    );
    assert_eq!(
        ids(s.search_accounts("a_c", &all()).await.unwrap()),
        ["acc_4"]
    );
    assert!(s.search_accounts("zzz", &all()).await.unwrap().is_empty());
    assert!(s
        .search_accounts("acme", &page(None, 0))
        .await
        .unwrap()
        .is_empty());
}
