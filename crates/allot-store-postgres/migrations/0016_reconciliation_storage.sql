-- A kept reconciliation is written once and read back whole (the next run
-- compares with it); nothing queries inside it. As json (the text, checked)
-- rather than jsonb, a run of every model (a megabyte of rows and names) is
-- no longer parsed into a jsonb tree on every write and printed back on
-- every read. The SQLite backend's 0016 clusters `installations` instead.
ALTER TABLE reconciliations ALTER COLUMN items TYPE json USING items::json;
