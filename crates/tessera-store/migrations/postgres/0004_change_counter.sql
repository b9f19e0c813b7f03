-- The change counter: advanced by every transaction that changes tokens, permissions or
-- environments (never by audit appends or open sessions). Replicas read it once per request
-- and trust their caches only while it has not moved. SQLite keeps it in the server process.
ALTER TABLE audit_head ADD COLUMN changes BIGINT NOT NULL DEFAULT 0;
