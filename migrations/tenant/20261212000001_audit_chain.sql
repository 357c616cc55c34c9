-- Tamper evidence for the audit log: each organization's records form a hash chain. A record
-- stores its place in the chain (`seq`), the hash of the record before it and the hash of its
-- own content with that link, so editing, deleting or reordering records, even as the database
-- owner, leaves a break that `tessera-server audit verify` finds and names, unless whoever
-- edits also recomputes every later hash and the head (the chain has no key; see the README).
--
-- The control plane's audit_log gets the same chain in its own migration; keep the two alike
-- (`backend/src/audit/chain.rs` recomputes the hashes from the columns, in Rust, to check).

ALTER TABLE audit_log ADD COLUMN seq bigint;
ALTER TABLE audit_log ADD COLUMN prev_hash bytea;
ALTER TABLE audit_log ADD COLUMN hash bytea;

-- The head of each organization's chain (the last record's seq and hash), and its anchor:
-- where the remaining records start once old ones have been pruned (the last pruned record's
-- seq and hash). Only the chain's own functions, which run as the owner, touch it.
CREATE TABLE audit_chain (
    tenant_id    uuid PRIMARY KEY DEFAULT app_tenant_id(),
    last_seq     bigint NOT NULL,
    last_hash    bytea NOT NULL,
    anchor_seq   bigint NOT NULL DEFAULT 0,
    anchor_hash  bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
    pruned_at    timestamptz
);
ALTER TABLE audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_chain_in_tenant ON audit_chain
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

-- One field of the hashed text: its length in bytes, then the value (`~` for NULL), so no two
-- different records can read the same.
CREATE FUNCTION audit_chain_field(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN value IS NULL THEN '~' ELSE octet_length(value)::text || ':' || value END $$;

-- What a record's hash covers, in a fixed order. `chain.rs` builds the same text.
CREATE FUNCTION audit_chain_text(r audit_log) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT 'v1|' || concat_ws('|',
        audit_chain_field(r.tenant_id::text),
        audit_chain_field(r.seq::text),
        audit_chain_field(r.id::text),
        audit_chain_field(to_char(r.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
        audit_chain_field(r.actor_id::text),
        audit_chain_field(r.actor_api_key_id::text),
        audit_chain_field(r.action),
        audit_chain_field(r.target_type),
        audit_chain_field(r.target_id),
        audit_chain_field(r.changes::text),
        audit_chain_field(host(r.ip)),
        audit_chain_field(r.user_agent),
        audit_chain_field(r.request_id),
        audit_chain_field(encode(r.prev_hash, 'hex'))) $$;

-- Links a new record to its organization's chain. The head's row lock makes concurrent writers
-- of one organization take turns from here to their commit (a record is written last, just
-- before the commit, so the wait is short); other organizations don't wait. A record that
-- arrives with its hash (a move copying the chain verbatim) is kept as it is: only the owner
-- can write these columns, the app role may not.
--
-- The head row is written once per transaction, at commit (`audit_chain_save`): updating it
-- per record would leave a dead row version per record for the next lookup to step over, and a
-- transaction writing many records would slow down quadratically. Until then the link comes
-- from the newest record itself (the transaction sees its own), unless the head is further on:
-- then the newest records were deleted, and the next one keeps the gap visible.
CREATE FUNCTION audit_chain_link() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    head audit_chain%ROWTYPE;
    newest record;
BEGIN
    IF NEW.hash IS NOT NULL THEN
        RETURN NEW;
    END IF;
    INSERT INTO audit_chain (tenant_id, last_seq, last_hash) VALUES (NEW.tenant_id, 0, decode(repeat('00', 32), 'hex'))
        ON CONFLICT (tenant_id) DO NOTHING;
    SELECT * INTO head FROM audit_chain WHERE tenant_id = NEW.tenant_id FOR UPDATE;
    SELECT seq, hash INTO newest FROM audit_log WHERE tenant_id = NEW.tenant_id ORDER BY seq DESC LIMIT 1;
    IF FOUND AND newest.seq >= head.last_seq THEN
        NEW.seq := newest.seq + 1;
        NEW.prev_hash := newest.hash;
    ELSE
        NEW.seq := head.last_seq + 1;
        NEW.prev_hash := head.last_hash;
    END IF;
    NEW.hash := sha256(convert_to(audit_chain_text(NEW), 'UTF8'));
    RETURN NEW;
END $$;

-- At commit, for each record the transaction wrote: moves the head to the newest record, if
-- it isn't there yet (the first call does it; the others find it done).
CREATE FUNCTION audit_chain_save() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    newest record;
BEGIN
    SELECT seq, hash INTO newest FROM audit_log WHERE tenant_id = NEW.tenant_id ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        UPDATE audit_chain SET last_seq = newest.seq, last_hash = newest.hash
         WHERE tenant_id = NEW.tenant_id AND last_seq < newest.seq;
    END IF;
    RETURN NULL;
END $$;

-- Removes the organization's records older than `keep_days` (never fewer than 90 days: the app
-- can't empty its own history) and moves the chain's anchor to the last one removed, so what
-- remains still verifies. Runs in the organization set by `app.tenant_id`; answers how many.
CREATE FUNCTION audit_prune(keep_days integer) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    tenant uuid := app_tenant_id();
    head audit_chain%ROWTYPE;
    cut record;
    removed bigint;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'audit_prune needs app.tenant_id';
    END IF;
    SELECT * INTO head FROM audit_chain WHERE tenant_id = tenant FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    -- The newest old record by its place in the chain (found through the time index).
    SELECT a.seq, a.hash INTO cut FROM audit_log a
     WHERE a.tenant_id = tenant
       AND a.seq = (SELECT max(o.seq) FROM audit_log o
                     WHERE o.tenant_id = tenant AND o.occurred_at < now() - make_interval(days => greatest(keep_days, 90)));
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    DELETE FROM audit_log WHERE tenant_id = tenant AND seq <= cut.seq;
    GET DIAGNOSTICS removed = ROW_COUNT;
    UPDATE audit_chain SET anchor_seq = cut.seq, anchor_hash = cut.hash, pruned_at = now() WHERE tenant_id = tenant;
    RETURN removed;
END $$;

-- A definer's function must not look names up where the caller can put objects (pg_temp is
-- searched first unless listed): pin the schema these were made in, pg_temp last.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_chain_link() SET search_path = pg_catalog, %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION audit_chain_save() SET search_path = pg_catalog, %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION audit_prune(integer) SET search_path = pg_catalog, %I, pg_temp', current_schema());
END $$;

-- Chain the records written so far, per organization, oldest first. The owner is bound by the
-- row policies too (FORCE), so they step aside for the length of this migration.
ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_chain NO FORCE ROW LEVEL SECURITY;
DO $$
DECLARE
    r audit_log%ROWTYPE;
    current_tenant uuid;
    n bigint;
    previous bytea;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY tenant_id, occurred_at, id LOOP
        IF current_tenant IS DISTINCT FROM r.tenant_id THEN
            IF current_tenant IS NOT NULL THEN
                INSERT INTO audit_chain (tenant_id, last_seq, last_hash) VALUES (current_tenant, n, previous);
            END IF;
            current_tenant := r.tenant_id;
            n := 0;
            previous := decode(repeat('00', 32), 'hex');
        END IF;
        n := n + 1;
        r.seq := n;
        r.prev_hash := previous;
        r.hash := sha256(convert_to(audit_chain_text(r), 'UTF8'));
        UPDATE audit_log SET seq = r.seq, prev_hash = r.prev_hash, hash = r.hash WHERE id = r.id;
        previous := r.hash;
    END LOOP;
    IF current_tenant IS NOT NULL THEN
        INSERT INTO audit_chain (tenant_id, last_seq, last_hash) VALUES (current_tenant, n, previous);
    END IF;
END $$;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_chain FORCE ROW LEVEL SECURITY;

ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL;
ALTER TABLE audit_log ALTER COLUMN prev_hash SET NOT NULL;
ALTER TABLE audit_log ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (tenant_id, seq);
-- The viewer's order (newest first, ties by id) and its cursor.
CREATE INDEX audit_log_timeline ON audit_log (tenant_id, occurred_at DESC, id DESC);
DROP INDEX audit_log_recent;
-- The viewer's filters by person and by target.
CREATE INDEX audit_log_by_actor ON audit_log (tenant_id, actor_id, occurred_at DESC);
CREATE INDEX audit_log_by_target ON audit_log (tenant_id, target_type, target_id, occurred_at DESC);

CREATE TRIGGER audit_chain_link BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain_link();
CREATE CONSTRAINT TRIGGER audit_chain_save AFTER INSERT ON audit_log DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION audit_chain_save();

-- The app writes what happened; the chain's columns are the trigger's alone.
REVOKE INSERT ON audit_log FROM tessera_app;
GRANT INSERT (tenant_id, actor_id, actor_api_key_id, action, target_type, target_id, changes, ip, user_agent, request_id) ON audit_log TO tessera_app;
GRANT SELECT ON audit_chain TO tessera_app;
GRANT EXECUTE ON FUNCTION audit_prune(integer) TO tessera_app;
REVOKE EXECUTE ON FUNCTION audit_chain_link() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_chain_save() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_prune(integer) FROM PUBLIC;
