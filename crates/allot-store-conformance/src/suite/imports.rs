//! Imports: chunks written inside one transaction, committed only when
//! asked and nothing was refused; the reads the checks make.

use allot_store::imports::{new_rows, ImportChunk, ImportMsg, RowRefusal, Table};
use allot_store::model::Account;

use crate::fixtures::*;
use crate::TestDatabase;

fn keyed(name: &str, external: &str) -> Account {
    Account {
        external_id: Some(external.into()),
        ..account(name, None)
    }
}

pub async fn an_import_commits_whole_or_not_at_all(db: &TestDatabase) {
    let store = db.store();
    active_entitlement(store.as_ref(), "ent_imp", 3).await;
    let run = |messages: Vec<ImportMsg>| {
        let store = store.clone();
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let running = tokio::spawn(async move { store.run_import(rx, today(), now()).await });
            for m in messages {
                tx.send(m).await.unwrap();
            }
            drop(tx);
            running.await.unwrap().unwrap()
        }
    };
    let accounts = |names: &[(&str, &str)]| {
        let rows = names.iter().map(|(n, e)| keyed(n, e)).collect();
        ImportChunk::Rows(Box::new(new_rows(
            rows,
            vec![],
            vec![],
            vec![],
            &tester(),
            now(),
        )))
    };
    let usage_chunk = |rows: Vec<(u64, i64, &str)>| ImportChunk::Usage {
        rows: rows.iter().map(|r| r.0).collect(),
        items: rows
            .iter()
            .map(|r| usage("ent_imp", r.1, Some(r.2)))
            .collect(),
    };
    // A dry run (no commit): written, then rolled back.
    let dry = run(vec![
        ImportMsg::Chunk(accounts(&[("acc_i1", "X-1")])),
        ImportMsg::Finish { commit: false },
    ])
    .await;
    assert_eq!((dry.written, dry.committed), (1, false));
    assert!(store.get_account("acc_i1").await.unwrap().is_none());
    // A feed that ends without Finish: nothing either.
    let cut = run(vec![ImportMsg::Chunk(accounts(&[("acc_i1", "X-1")]))]).await;
    assert!(!cut.committed);
    assert!(store.get_account("acc_i1").await.unwrap().is_none());
    // Usage past the cap in a later chunk refuses the whole import.
    let refused = run(vec![
        ImportMsg::Chunk(accounts(&[("acc_i1", "X-1")])),
        ImportMsg::Chunk(usage_chunk(vec![(2, 2, "u1")])),
        ImportMsg::Chunk(usage_chunk(vec![(3, 2, "u2"), (4, 1, "u3")])),
        ImportMsg::Finish { commit: true },
    ])
    .await;
    assert!(!refused.committed);
    assert_eq!(refused.refused_total, 1);
    assert_eq!(refused.refused[0].row, 3);
    assert!(store.get_account("acc_i1").await.unwrap().is_none());
    assert_eq!(counters(store.as_ref(), "ent_imp").await.used.milli(), 0);
    // A key an earlier row of the file had, in the same chunk or a later
    // one: that row is refused, naming the first; nothing is written.
    let twice = run(vec![
        ImportMsg::Chunk(usage_chunk(vec![(2, 1, "d1"), (3, 1, "d2")])),
        ImportMsg::Chunk(usage_chunk(vec![(4, 1, "d1"), (5, 1, "d3"), (6, 1, "d3")])),
        ImportMsg::Finish { commit: true },
    ])
    .await;
    assert!(!twice.committed);
    let duplicate = |row: u64, first: u64, key: &str| allot_store::imports::RefusedRow {
        row,
        refusal: RowRefusal::DuplicateKey {
            first,
            key: key.into(),
        },
    };
    assert_eq!(
        twice.refused,
        vec![duplicate(4, 2, "d1"), duplicate(6, 5, "d3")]
    );
    assert_eq!((twice.applied, twice.refused_total), (3, 2));
    assert_eq!(counters(store.as_ref(), "ent_imp").await.used.milli(), 0);
    // The same without the bad row commits; again, it replays.
    let good = || {
        vec![
            ImportMsg::Chunk(accounts(&[("acc_i1", "X-1"), ("acc_i2", "X-2")])),
            ImportMsg::Chunk(usage_chunk(vec![(2, 2, "u1")])),
            ImportMsg::Chunk(usage_chunk(vec![(3, 1, "u3")])),
            ImportMsg::Finish { commit: true },
        ]
    };
    let done = run(good()).await;
    assert!(done.committed);
    assert_eq!((done.written, done.applied, done.replayed), (2, 2, 0));
    assert_eq!(counters(store.as_ref(), "ent_imp").await.used.milli(), 3000);
    let again = run(good().into_iter().skip(1).collect()).await;
    assert!(again.committed);
    assert_eq!((again.applied, again.replayed), (0, 2));
    assert_eq!(counters(store.as_ref(), "ent_imp").await.used.milli(), 3000);
    assert_eq!(ledger_sum(store.as_ref(), "ent_imp").await, (2, 3000));
    // The reads.
    let external = store
        .accounts_by_external_id(&["X-2".into(), "X-9".into()])
        .await
        .unwrap();
    assert_eq!(external, vec![("X-2".to_string(), "acc_i2".to_string())]);
    assert_eq!(
        store
            .get_account("acc_i2")
            .await
            .unwrap()
            .unwrap()
            .external_id
            .as_deref(),
        Some("X-2")
    );
    let ids = store
        .existing_ids(Table::Entitlements, &["ent_imp".into(), "ent_none".into()])
        .await
        .unwrap();
    assert_eq!(
        ids,
        vec![("ent_imp".to_string(), Some("acc_ent_imp".to_string()))]
    );
    assert!(store
        .accounts_with_default(&["acc_i1".into()])
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .products_by_sku(&["NONE".into()])
        .await
        .unwrap()
        .is_empty());
}
