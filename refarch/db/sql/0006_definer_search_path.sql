-- 0006: the SECURITY DEFINER functions cannot be shadowed by a caller's temporary objects.
--
-- 0002 pinned their search_path FROM CURRENT ("$user", public), which leaves pg_temp out, and
-- PostgreSQL then searches the caller's temporary schema FIRST for tables and sequences: a
-- role that may create a temporary `outbox` or `product_version_seq` sent its own changes
-- there (or stamped them with old versions the indexer skips), so they never reached the
-- index. Each function now searches pg_catalog, then this schema, then pg_temp last.
--
-- products_stamp_insert (0004) keeps having no SET clause (it runs per COPY row, and a SET
-- clause cost ~3.5 us a row): every name in it is schema-qualified, so it is already safe.
-- TEMPORARY itself is revoked from the service roles by refarch.db.migrations.migrate on every
-- run (database privileges are not copied by CREATE DATABASE ... TEMPLATE, so a migration
-- applied once could not keep them). Safe to run again.

DO $migration$
DECLARE
    pinned text := format('pg_catalog, %I, pg_temp', current_schema());
    fn text;
BEGIN
    FOREACH fn IN ARRAY ARRAY['products_stamp_version()', 'products_outbox_capture()',
                              'outbox_stats()'] LOOP
        EXECUTE format('ALTER FUNCTION %I.%s SET search_path = %s', current_schema(), fn, pinned);
    END LOOP;
END
$migration$;
