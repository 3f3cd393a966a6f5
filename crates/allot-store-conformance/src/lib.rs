//! The store behaviour suite, written once against `allot_store::Store` and
//! run against every backend: a backend's `tests/` makes a `TestDatabase`
//! (a fresh migrated database per test, with its `DatabaseAccess`) and
//! expands `conformance_tests!`.
//!
//! Test bodies go through `fixtures`, which holds the one `Terms` fixture
//! and one helper per store call: a change of a `Store` signature is mended
//! there, not in every test.
//!
//! PostgreSQL tests are marked with `postgres_test!`: ignored (and reported
//! so by the test runner) when the build saw no `ALLOT_TEST_DATABASE_URL`,
//! run otherwise; with `CI=true` they always run, and fail without a server.
#![forbid(unsafe_code)]

use std::sync::Arc;

use allot_store::Store;
use async_trait::async_trait;

pub mod fixtures;
pub mod suite;

/// A fresh, migrated database of one backend, for one test.
pub struct TestDatabase {
    /// What `Store::backend` answers for it.
    pub backend: &'static str,
    /// Batches in flight at once, as the server runs this backend.
    pub writers: usize,
    /// The backend's `migrations` directory.
    pub migrations_dir: &'static str,
    store: Arc<dyn Store>,
    access: Box<dyn DatabaseAccess>,
}

/// What a backend's tests give the suite beside the store.
#[async_trait]
pub trait DatabaseAccess: Send + Sync + 'static {
    /// Another store over the same database, with connections of its own:
    /// as far as the database can tell, another process.
    async fn instance(&self) -> Arc<dyn Store>;
    /// A statement outside the store, for states the API never makes.
    async fn execute(&self, sql: &str);
    /// The rows of a query whose columns are all text (or NULL): the one
    /// way to check copy columns the trait does not return.
    async fn query_text(&self, sql: &str) -> Vec<Vec<Option<String>>>;
    /// Drops what the database left behind, once every store is gone.
    async fn finish(&self) {}
}

impl TestDatabase {
    pub fn new(
        backend: &'static str,
        writers: usize,
        migrations_dir: &'static str,
        store: Arc<dyn Store>,
        access: impl DatabaseAccess,
    ) -> TestDatabase {
        TestDatabase {
            backend,
            writers,
            migrations_dir,
            store,
            access: Box::new(access),
        }
    }

    /// The store the test starts with.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub async fn instance(&self) -> Arc<dyn Store> {
        self.access.instance().await
    }

    /// The migration names the backend ships, in order.
    pub fn migrations(&self) -> Vec<String> {
        migrations_in(self.migrations_dir)
    }

    pub async fn execute(&self, sql: &str) {
        self.access.execute(sql).await
    }

    pub async fn query_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.access.query_text(sql).await
    }

    pub async fn finish(self) {
        drop(self.store);
        self.access.finish().await
    }
}

/// The PostgreSQL server tests create their databases on. Only tests marked
/// `postgres_test!` call it, and those are ignored unless a server was named
/// at build time or `CI=true`: reaching here without one is a failure.
pub fn postgres_admin_url() -> String {
    match std::env::var("ALLOT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "ALLOT_TEST_DATABASE_URL is not set, and PostgreSQL tests must run here \
             (CI=true, or the build saw the variable)"
        ),
    }
}

/// Marks PostgreSQL tests: here they run (a server was named at build time,
/// or `CI=true`).
#[cfg(allot_pg)]
#[macro_export]
macro_rules! postgres_test {
    ($($test:item)*) => {
        $($test)*
    };
}

/// Marks PostgreSQL tests: here no server was named at build time, so the
/// runner reports them ignored, never passed.
#[cfg(not(allot_pg))]
#[macro_export]
macro_rules! postgres_test {
    ($($test:item)*) => {
        $(
            #[ignore = "ALLOT_TEST_DATABASE_URL not set"]
            $test
        )*
    };
}

/// Leaves a test as it is (the gate of backends that always run).
#[macro_export]
macro_rules! always_test {
    ($($test:item)*) => {
        $($test)*
    };
}

/// One `#[tokio::test]` per conformance test, in the calling module:
/// `conformance_tests!(fresh, always_test)`, where `fresh(name).await` gives
/// a `TestDatabase` and the second word names the gate (`always_test` or
/// `postgres_test`).
#[macro_export]
macro_rules! conformance_tests {
    (@each $fresh:path, $gate:ident, $group:ident :: $name:ident, $($rest:tt)*) => {
        $crate::$gate! {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = $fresh(stringify!($name)).await;
                $crate::suite::$group::$name(&db).await;
                db.finish().await;
            }
        }
        $crate::conformance_tests!(@each $fresh, $gate, $($rest)*);
    };
    (@each $fresh:path, $gate:ident,) => {};
    ($fresh:path, $gate:ident) => {
        $crate::conformance_tests!(@each $fresh, $gate,
            records::migrations_apply_once_even_when_raced,
            records::parties_round_trip_and_page,
            records::ancestors_nearest_first_and_cycles_end,
            records::entitlement_reads_back_identical,
            records::entitlement_filters_combine,
            records::one_default_per_account,
            records::terms_edit_only_drafts,
            records::a_store_shared_across_tasks_reads_its_own_writes,
            lifecycle::transitions_record_who_and_emit_events,
            lifecycle::renew_makes_a_draft_successor,
            lifecycle::sync_stores_the_dates_once_across_instances,
            keys::answers_are_recorded_with_their_change_and_purged,
            keys::api_keys_by_hash_list_revoke_count,
            users::users_by_email_unique_in_any_case_and_disabled_once,
            users::one_user_per_email_when_created_at_once,
            batch::the_cap_holds_with_many_writers_on_two_instances,
            batch::a_key_replays_its_first_answer,
            batch::one_key_on_two_instances_at_once_applies_once,
            batch::one_batch_decides_in_order_and_writes_once,
            batch::the_write_path_finishes_an_unfinished_claim,
            batch::reservations_hold_commit_release_and_expire,
            cases::a_case_uses_its_entitlement_until_cancelled,
            cases::a_work_order_is_recorded_once_per_entitlement,
            cases::cases_list_by_account_entitlement_and_status,
            audit::each_change_writes_one_audit_row,
            audit::sync_and_api_keys_are_audited,
            audit::list_audit_filters_and_pages,
            audit::the_write_path_audits_cases_and_reservations,
            schedule::dates_owe_each_event_once_across_instances,
            schedule::a_manual_renewal_stands_for_the_automatic_one,
            reports::ledger_sums_by_period_and_by_day,
            reports::day_sums_follow_the_ledger,
            reports::urgency_keys_follow_the_paged_order,
            alerts::account_managers_are_stored_and_audited,
            alerts::webhooks_are_edited_rotated_and_deleted,
            alerts::events_fan_out_once_across_instances,
            alerts::deliveries_are_claimed_once_and_follow_the_schedule,
            software::allocations_never_exceed_rights_across_instances,
            software::software_rows_read_back_and_upgrade_in_one_transaction,
            software::installations_move_forward_and_reconciliations_are_kept,
            software::a_due_reconciliation_runs_once_across_instances,
            contracts::contract_actions_flow_down_and_expiry_runs_once,
            contracts::instantiation_is_all_or_nothing_and_make_default_moves_it,
            dashboard::recent_events_are_newest_first_and_bounded,
            dashboard::account_search_matches_name_or_id_in_any_case_and_pages,
            imports::an_import_commits_whole_or_not_at_all,
            software::reconciliation_counts_in_the_store_as_the_rules_over_every_row,
        );
    };
}

/// The migration names in a backend's `migrations` directory, in order.
pub fn migrations_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".sql").map(str::to_string))
        .collect();
    names.sort();
    names
}
