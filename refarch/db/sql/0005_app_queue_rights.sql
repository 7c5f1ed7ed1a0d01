-- 0005: the app's sync status page counts the local queue, lists its dead letters and
-- redrives them as the app role, not as the owner (issue 13: locally every service connects
-- with its own role, as in the cloud, where the app's task may peek at the DLQ and send its
-- messages back to the queue).
--
-- * refarch_app may read queue_messages and add to it (a redrive), read queue_dead_letters
--   and delete from it (a redrive moves them), and update one column of it: the redrive's
--   FOR UPDATE needs an UPDATE privilege, and no row is updated.
-- * It still cannot receive, hide or delete waiting messages (no UPDATE or DELETE on
--   queue_messages) nor touch deduplication ids.
--
-- The role comes from 0002; granted only if it exists. Safe to run again.
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'refarch_app') THEN
        GRANT SELECT, INSERT ON queue_messages TO refarch_app;
        GRANT SELECT, DELETE ON queue_dead_letters TO refarch_app;
        GRANT UPDATE (seq) ON queue_dead_letters TO refarch_app;
    END IF;
END
$grants$;
