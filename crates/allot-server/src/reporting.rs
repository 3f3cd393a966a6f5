//! What every report shares: which entitlements it covers (the filters,
//! scoped to the caller), the scan over them in id order, and paging by
//! row with a cursor that names the last row shown.

use allot_core::entitlement::Status;
use allot_store::model::{EntitlementFilter, EntitlementRecord, Page};
use chrono::NaiveDate;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::state::AppState;
use crate::views::{status_today, Listing};

/// Entitlements read from the store at a time.
pub const SCAN_BATCH: u32 = 200;
/// Most entitlements one page of a report in id order looks at; past it
/// the page ends early and its cursor goes on from there.
pub const MAX_SCAN_PER_PAGE: usize = 10_000;

/// The filters every report and the entitlement list take.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    filter: EntitlementFilter,
    /// Statuses as the dates imply them today.
    statuses: Option<Vec<Status>>,
    product_id: Option<String>,
    contract_id: Option<String>,
    /// A customer asked about another account: nothing matches.
    nothing: bool,
}

fn named<T>(
    query: &Query,
    name: &str,
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> ApiResult<Option<T>> {
    query
        .get(name)
        .map(|v| parse(v).ok_or_else(|| ApiError::field(name, format!("must be {expected}"))))
        .transpose()
}

impl Scope {
    /// `account_id`, `unit`, `owner`, `product_id`, `contract_id` and (when
    /// `with_status`) `status`, confined to a customer's account.
    pub fn parse(query: &Query, principal: &Principal, with_status: bool) -> ApiResult<Scope> {
        let mut scope = Scope {
            filter: EntitlementFilter {
                account_id: query.get("account_id").map(str::to_string),
                owner: query.get("owner").map(str::to_string),
                unit: named(
                    query,
                    "unit",
                    allot_core::Unit::parse,
                    "cases, hours, visits or units",
                )?,
                ..Default::default()
            },
            product_id: query.get("product_id").map(str::to_string),
            contract_id: query.get("contract_id").map(str::to_string),
            ..Default::default()
        };
        if with_status {
            let status = named(
                query,
                "status",
                Status::parse,
                "draft, waiting, active, expired or cancelled",
            )?;
            scope.statuses = status.map(|s| vec![s]);
        }
        if let Some(own) = principal.confined_to() {
            if scope.filter.account_id.as_deref().is_some_and(|a| a != own) {
                scope.nothing = true;
            }
            scope.filter.account_id = Some(own.to_string());
        }
        Ok(scope)
    }

    /// Only entitlements in one of `statuses` today (unless the caller
    /// already narrowed to one status).
    pub fn by_default(mut self, statuses: &[Status]) -> Scope {
        if self.statuses.is_none() {
            self.statuses = Some(statuses.to_vec());
        }
        self
    }

    /// A customer asked about another account: nothing matches.
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether the scope holds `r` (the store read a superset).
    pub fn keeps(&self, r: &EntitlementRecord, today: NaiveDate) -> bool {
        let t = &r.entitlement.terms;
        self.statuses
            .as_ref()
            .is_none_or(|s| s.contains(&status_today(r, today)))
            && self
                .product_id
                .as_ref()
                .is_none_or(|p| t.product_ids.contains(p))
            && self
                .contract_id
                .as_ref()
                .is_none_or(|c| t.contract_id.as_ref() == Some(c))
    }

    /// What the store can filter on: the stored state may lag the dates,
    /// so the activated states are read together and sorted out here.
    pub fn store_filter(&self) -> EntitlementFilter {
        let mut filter = self.filter.clone();
        filter.stored_status = self.statuses.as_ref().map(|wanted| {
            let mut stored = Vec::new();
            for s in wanted {
                let group: &[Status] = match s {
                    Status::Draft | Status::Cancelled | Status::Suspended => {
                        std::slice::from_ref(s)
                    }
                    _ => &[Status::Waiting, Status::Active, Status::Expired],
                };
                for g in group {
                    if !stored.contains(g) {
                        stored.push(*g);
                    }
                }
            }
            stored
        });
        filter
    }
}

/// Which entitlements of a scope a scan reads.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// All of them.
    All,
    /// Those that may have a period closed by `today` ending from `from`
    /// to `to` (`ReportStore::closed_between`).
    ClosedBetween {
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    },
}

/// The entitlements of a scope in id order, a batch at a time.
pub struct Scanner<'a> {
    state: &'a AppState,
    source: Source,
    filter: EntitlementFilter,
    scope: Scope,
    today: NaiveDate,
    after: Option<String>,
    done: bool,
    pub scanned: usize,
    /// Entitlements the next read asks for: a page's worth at first, then
    /// twice as many each time, up to `SCAN_BATCH`.
    batch: u32,
}

impl<'a> Scanner<'a> {
    /// Starts after entitlement `after` (none: from the first).
    pub fn new(state: &'a AppState, scope: Scope, after: Option<String>) -> Self {
        Scanner::of(state, scope, after, Source::All)
    }

    /// Starts after entitlement `after`, reading `source`.
    pub fn of(state: &'a AppState, scope: Scope, after: Option<String>, source: Source) -> Self {
        Scanner {
            state,
            source,
            filter: scope.store_filter(),
            done: scope.nothing,
            today: state.clock.today(),
            scope,
            after,
            scanned: 0,
            batch: SCAN_BATCH,
        }
    }

    /// The next batch the scope keeps (possibly empty), or `None` at the end.
    pub async fn next(&mut self) -> ApiResult<Option<Vec<EntitlementRecord>>> {
        if self.done {
            return Ok(None);
        }
        let page = Page {
            after: self.after.clone(),
            limit: self.batch,
        };
        let store = &self.state.store;
        let rows = match self.source {
            Source::All => store.list_entitlements(&self.filter, &page).await?,
            Source::ClosedBetween { from, to, today } => {
                store
                    .closed_between(&self.filter, from, to, today, page.after, page.limit)
                    .await?
            }
        };
        self.scanned += rows.len();
        self.done = rows.len() < page.limit as usize;
        self.batch = (self.batch * 2).min(SCAN_BATCH);
        self.after = rows.last().map(|r| r.entitlement.id.clone());
        Ok(Some(
            rows.into_iter()
                .filter(|r| self.scope.keeps(r, self.today))
                .collect(),
        ))
    }

    /// The id of the last entitlement read.
    pub fn last_read(&self) -> Option<&str> {
        self.after.as_deref()
    }

    pub fn finished(&self) -> bool {
        self.done
    }
}

/// Where a row stands in its report: by `key` (an entitlement id, or a
/// sort key ending in one), then by `rank` among the rows of that key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub key: String,
    pub rank: u32,
}

impl Position {
    pub fn new(key: impl Into<String>, rank: u32) -> Self {
        Position {
            key: key.into(),
            rank,
        }
    }

    /// After every row of `key`.
    pub fn after_all(key: impl Into<String>) -> Self {
        Position::new(key, u32::MAX)
    }

    fn cursor(&self) -> String {
        format!("{}~{}", self.key, self.rank)
    }

    /// The position a cursor names. Any text is a position (the page
    /// starts after it), as with every other list of this service.
    pub fn parse_cursor(page: &Page) -> Option<Position> {
        let text = page.after.as_ref()?;
        Some(
            match text
                .rsplit_once('~')
                .and_then(|(key, rank)| Some((key, rank.parse().ok()?)))
            {
                Some((key, rank)) => Position::new(key, rank),
                None => Position::after_all(text.as_str()),
            },
        )
    }
}

/// One page of rows after a cursor. Rows may come in any order; the page
/// holds the first `limit` of those after the cursor, in position order.
pub struct Pager<R> {
    limit: usize,
    after: Option<Position>,
    rows: Vec<(Position, R)>,
}

impl<R> Pager<R> {
    pub fn new(page: &Page) -> Self {
        Pager {
            limit: page.limit as usize,
            after: Position::parse_cursor(page),
            rows: Vec::new(),
        }
    }

    /// The entitlement id to scan from: the cursor's, when its key is one.
    pub fn resume_at(&self) -> Option<&str> {
        self.after.as_ref().map(|p| p.key.as_str())
    }

    pub fn push(&mut self, at: Position, row: R) {
        if self.after.as_ref().is_none_or(|after| at > *after) {
            self.rows.push((at, row));
        }
    }

    /// Rows come in position order and one more than a page is held.
    pub fn full(&self) -> bool {
        self.rows.len() > self.limit
    }

    /// The page. `stopped_at` is where an unfinished scan stopped: a short
    /// page then still has a cursor, to go on from there.
    pub fn finish<T: utoipa::ToSchema>(
        mut self,
        stopped_at: Option<Position>,
        view: impl Fn(R) -> T,
    ) -> Listing<T> {
        self.rows.sort_by(|a, b| a.0.cmp(&b.0));
        let more = self.rows.len() > self.limit;
        self.rows.truncate(self.limit);
        let next_cursor = if more {
            self.rows.last().map(|(p, _)| p.cursor())
        } else {
            stopped_at.map(|p| p.cursor())
        };
        Listing {
            items: self.rows.into_iter().map(|(_, r)| view(r)).collect(),
            next_cursor,
        }
    }
}

/// A report in entitlement id order: batches from the cursor's entitlement
/// on, until the page is full, the scope is scanned, or the page has
/// looked at `MAX_SCAN_PER_PAGE` entitlements.
pub struct IdOrder<'a, R> {
    scan: Scanner<'a>,
    pub pager: Pager<R>,
    stopped_at: Option<Position>,
}

impl<'a, R> IdOrder<'a, R> {
    pub fn start(state: &'a AppState, scope: Scope, page: &Page) -> Self {
        IdOrder::start_of(state, scope, page, Source::All)
    }

    /// As `start`, reading `source`.
    pub fn start_of(state: &'a AppState, scope: Scope, page: &Page, source: Source) -> Self {
        let pager = Pager::new(page);
        // The cursor's own entitlement may have rows left: scan from just
        // before it (rows at or before the cursor are dropped by the pager).
        let start = pager.resume_at().map(|id| {
            let mut before = id.to_string();
            before.pop();
            before
        });
        IdOrder {
            scan: Scanner {
                // Enough for a page when each entitlement has a row.
                batch: page.limit.saturating_add(1).min(SCAN_BATCH),
                ..Scanner::of(state, scope, start, source)
            },
            pager,
            stopped_at: None,
        }
    }

    /// Each entitlement gives about `rows` rows: the first read asks for
    /// only as many entitlements as fill a page.
    pub fn rows_each(&mut self, rows: u32) {
        let page = self.pager.limit as u32 + 1;
        self.scan.batch = page.div_ceil(rows.max(1)).clamp(1, SCAN_BATCH);
    }

    pub async fn next_batch(&mut self) -> ApiResult<Option<Vec<EntitlementRecord>>> {
        if self.pager.full() {
            return Ok(None);
        }
        if self.scan.scanned >= MAX_SCAN_PER_PAGE && !self.scan.finished() {
            self.stopped_at = self.scan.last_read().map(Position::after_all);
            return Ok(None);
        }
        self.scan.next().await
    }

    pub fn push(&mut self, at: Position, row: R) {
        self.pager.push(at, row);
    }

    pub fn finish<T: utoipa::ToSchema>(self, view: impl Fn(R) -> T) -> Listing<T> {
        self.pager.finish(self.stopped_at, view)
    }
}

/// A page of rows in a report's own order (not by id), as `key` orders
/// them: the first `limit` of `rows` (which hold one more than a page when
/// there is more), and the cursor of the last shown when there is more.
pub fn keyed_page<K: Ord, R: utoipa::ToSchema>(
    mut rows: Vec<(K, R)>,
    limit: usize,
    cursor: impl Fn(&K) -> String,
) -> Listing<R> {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let more = rows.len() > limit;
    rows.truncate(limit);
    Listing {
        next_cursor: more.then(|| rows.last().map(|(k, _)| cursor(k))).flatten(),
        items: rows.into_iter().map(|(_, r)| r).collect(),
    }
}

/// The error of a cursor this service did not issue.
pub fn foreign_cursor() -> ApiError {
    ApiError::field("cursor", "is not a cursor this service issued")
}

/// The filters of `Scope::parse`, as the document states them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ScopeParams {
    /// Only this account's entitlements (a customer key sees only its own account).
    account_id: Option<String>,
    unit: Option<crate::inputs::schemas::UnitName>,
    owner: Option<String>,
    /// Only entitlements sold for this product (named in their `product_ids`).
    product_id: Option<String>,
    contract_id: Option<String>,
}

/// The status filter, on what the dates imply today.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StatusParam {
    status: Option<crate::inputs::schemas::StatusName>,
}

/// `csv` or `json` (`Accept: text/csv` also asks for CSV); `json` when absent.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FormatParam {
    /// json or csv; overrides `Accept`.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}
