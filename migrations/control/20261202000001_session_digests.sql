-- Sessions are kept under the SHA-256 of their cookie, never the cookie itself (the stored
-- record's own copy of the id is blanked too), and end after an absolute lifetime however active
-- they are (backend::sessions). Rows written before can't be converted in SQL (their records
-- hold the cookie), so they go: everyone signs in again once.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
