-- People who sign in to the dashboard: an email (unique whatever its case),
-- a role, the account of a customer, the argon2id hash of the password.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    account_id TEXT REFERENCES accounts(id),
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    disabled_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_by_email ON users (lower(email));
