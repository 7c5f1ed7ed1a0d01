-- 0002: change capture for the sync pipeline.
--
-- * products.version: a row version from one global sequence, bumped on every change to the
--   row (so it only ever grows, also across a delete and a re-insert of the same id).
-- * products.search_version: the version of the last change to a column the index holds
--   (sku, name, category, description, price). The index must end up holding exactly this
--   version; reconcile compares the two.
-- * outbox: one row per committed change the index must see, written by triggers in the same
--   transaction as the change. It carries ids and versions only, never the row's text, so a
--   long description can never make the user's statement fail (the reference architecture's
--   8,000-byte NOTIFY payload did). The relay consumes it; NOTIFY only wakes the relay up.
-- * reconcile_runs: what each reconcile found (missing, stale, orphaned vectors).
-- * roles refarch_app (read/write products), refarch_relay (read products, consume the
--   outbox), refarch_indexer (read products).
--
-- Safe to run again: everything is created if missing or replaced.

CREATE SEQUENCE IF NOT EXISTS product_version_seq;

DO $migration$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'products'
          AND column_name = 'search_version'
    ) THEN
        -- A volatile default gives every existing row its own version (the table is rewritten).
        ALTER TABLE products
            ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT nextval('product_version_seq');
        ALTER TABLE products ADD COLUMN search_version bigint;
        UPDATE products SET search_version = version;
        ALTER TABLE products ALTER COLUMN search_version SET NOT NULL;
        -- From now on the trigger stamps versions (a default would only burn numbers).
        ALTER TABLE products ALTER COLUMN version DROP DEFAULT;
    END IF;
END
$migration$;

CREATE TABLE IF NOT EXISTS outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id  bigint NOT NULL,
    op          text   NOT NULL CHECK (op IN ('upsert', 'delete')),
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

COMMENT ON TABLE outbox IS
    'Changes the vector index must see, written by triggers on products in the same '
    'transaction; consumed (claimed, published, deleted) by the relay.';

-- Rows that existed before this migration were never announced: announce them once, so that
-- no row is missing from the index just because it predates the pipeline.
DO $seed$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM outbox LIMIT 1)
       AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'products_outbox_insert'
                       AND tgrelid = 'products'::regclass) THEN
        INSERT INTO outbox (product_id, op, version)
        SELECT id, 'upsert', search_version FROM products ORDER BY id;
    END IF;
END
$seed$;

-- BEFORE ROW: stamp versions. Runs as the table owner so writers need no rights on the
-- sequence; search_path is pinned to the migration's schema (SECURITY DEFINER hygiene).
CREATE OR REPLACE FUNCTION products_stamp_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := nextval('product_version_seq');
        NEW.search_version := NEW.version;
        RETURN NEW;
    END IF;
    -- UPDATE: a statement that changes nothing keeps the versions; any other change bumps
    -- version and updated_at; a change to an indexed column also moves search_version.
    IF (to_jsonb(NEW) - ARRAY['version', 'search_version', 'updated_at'])
       IS NOT DISTINCT FROM
       (to_jsonb(OLD) - ARRAY['version', 'search_version', 'updated_at']) THEN
        NEW.version := OLD.version;
        NEW.search_version := OLD.search_version;
        RETURN NEW;
    END IF;
    NEW.version := nextval('product_version_seq');
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();  -- unless the statement set it itself
    END IF;
    IF (NEW.id, NEW.sku, NEW.name, NEW.category, NEW.description, NEW.price)
       IS DISTINCT FROM
       (OLD.id, OLD.sku, OLD.name, OLD.category, OLD.description, OLD.price) THEN
        NEW.search_version := NEW.version;
    ELSE
        NEW.search_version := OLD.search_version;
    END IF;
    RETURN NEW;
END
$fn$;

-- AFTER STATEMENT with transition tables: one INSERT ... SELECT per statement, so a COPY of
-- 100,000 rows writes its outbox rows in one go instead of 100,000 trigger calls.
CREATE OR REPLACE FUNCTION products_outbox_capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE
    written bigint := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO outbox (product_id, op, version)
        SELECT id, 'upsert', search_version FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Rows whose indexed columns changed, plus ids that an UPDATE of the key moved away.
        -- EXECUTE plans it afresh for each statement: a plan cached from a statement that
        -- touched few rows (a nested loop over the transition tables) makes the next large
        -- UPDATE quadratic.
        EXECUTE $sql$
            INSERT INTO outbox (product_id, op, version)
            SELECT n.id, 'upsert', n.search_version FROM new_rows n
            WHERE NOT EXISTS (SELECT 1 FROM old_rows o
                              WHERE o.id = n.id AND o.search_version = n.search_version)
            UNION ALL
            SELECT o.id, 'delete', nextval('product_version_seq') FROM old_rows o
            WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id)
        $sql$;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO outbox (product_id, op, version)
        SELECT id, 'delete', nextval('product_version_seq') FROM old_rows;
    ELSIF TG_OP = 'TRUNCATE' THEN
        -- TRUNCATE fires no row triggers; announce every row it is about to remove.
        INSERT INTO outbox (product_id, op, version)
        SELECT id, 'delete', nextval('product_version_seq') FROM products;
    END IF;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written > 0 THEN
        -- Only a wake-up for the relay: the outbox row is the carrier, so a relay that was
        -- not listening loses nothing.
        PERFORM pg_notify('refarch_outbox', '');
    END IF;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE TRIGGER products_stamp_version
    BEFORE INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION products_stamp_version();

CREATE OR REPLACE TRIGGER products_outbox_insert
    AFTER INSERT ON products REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_outbox_capture();

CREATE OR REPLACE TRIGGER products_outbox_update
    AFTER UPDATE ON products REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_outbox_capture();

CREATE OR REPLACE TRIGGER products_outbox_delete
    AFTER DELETE ON products REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_outbox_capture();

CREATE OR REPLACE TRIGGER products_outbox_truncate
    BEFORE TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION products_outbox_capture();

-- What each reconcile run found (refarch reconcile; `refarch status` shows the last one).
CREATE TABLE IF NOT EXISTS reconcile_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    products    bigint NOT NULL,
    vectors     bigint NOT NULL,
    missing     bigint NOT NULL,
    stale       bigint NOT NULL,
    orphaned    bigint NOT NULL,
    repaired    bigint NOT NULL DEFAULT 0
);

-- Counts for status panels, callable by roles that may not read the outbox itself.
CREATE OR REPLACE FUNCTION outbox_stats(OUT pending bigint, OUT oldest timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
    SELECT count(*), min(created_at) FROM outbox
$fn$;

-- Least-privilege roles. Roles belong to the whole server, so another database (or a
-- concurrent migration) may have created them already: create only what is missing and never
-- change an existing role's attributes (an administrator may have set a password).
DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['refarch_app', 'refarch_relay', 'refarch_indexer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created by a concurrent migration in another database
            END;
        END IF;
    END LOOP;
END
$roles$;

DO $grants$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO refarch_app, refarch_relay, refarch_indexer',
                   current_schema());
END
$grants$;

REVOKE ALL ON outbox, reconcile_runs FROM PUBLIC;
REVOKE ALL ON FUNCTION outbox_stats() FROM PUBLIC;

-- app: read and write products, nothing else (its changes reach the outbox through the
-- SECURITY DEFINER triggers).
GRANT SELECT, INSERT, UPDATE, DELETE ON products TO refarch_app;
GRANT EXECUTE ON FUNCTION outbox_stats() TO refarch_app, refarch_relay;
GRANT SELECT ON reconcile_runs TO refarch_app;

-- relay: read products (backfill), consume the outbox. Row locks (FOR UPDATE SKIP LOCKED)
-- need UPDATE on some column; id is an identity column that cannot be rewritten anyway.
GRANT SELECT ON products TO refarch_relay;
GRANT SELECT, DELETE ON outbox TO refarch_relay;
GRANT UPDATE (id) ON outbox TO refarch_relay;

-- indexer: read products only (it re-reads the current row for every message it handles).
GRANT SELECT ON products TO refarch_indexer;
