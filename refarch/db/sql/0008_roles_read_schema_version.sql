-- The service roles may read which migrations are applied (issue 13).
--
-- In the cloud a service's task first runs `refarch db wait` as its own role and starts only
-- once no migration is pending; that needs SELECT on schema_migrations. The table holds file
-- names and checksums only.
DO $grant$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['refarch_app', 'refarch_relay', 'refarch_indexer'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('GRANT SELECT ON schema_migrations TO %I', role_name);
        END IF;
    END LOOP;
END
$grant$;
