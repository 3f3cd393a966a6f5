//! Write transactions on cached statements: rusqlite's `Transaction`
//! parses `BEGIN`/`COMMIT` anew each time, a fixed cost on every batch.

use std::ops::Deref;

use rusqlite::Connection;

use crate::error::Res;

/// A `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so a
/// transaction never fails half-way to upgrade its lock. Rolled back on
/// drop unless committed.
pub(crate) struct ImmediateTx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> ImmediateTx<'c> {
    /// `&mut` so that nothing else uses the connection meanwhile.
    pub(crate) fn begin(conn: &'c mut Connection) -> Res<ImmediateTx<'c>> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(ImmediateTx { conn, open: true })
    }

    pub(crate) fn commit(mut self) -> Res<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Deref for ImmediateTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for ImmediateTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let rollback = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
            if let Err(e) = rollback {
                tracing::error!(error = %e, "SQLite rollback failed");
            }
        }
    }
}
