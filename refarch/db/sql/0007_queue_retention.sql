-- 0007: the local queue drops dead letters past their retention (refarch.queue.local), and the
-- consumer that sweeps them, the indexer role, may now delete them (it could already delete
-- queue messages). Safe to run again.

DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'refarch_indexer') THEN
        GRANT DELETE ON queue_dead_letters TO refarch_indexer;
    END IF;
END
$grants$;
