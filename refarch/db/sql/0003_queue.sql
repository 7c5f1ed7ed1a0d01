-- 0003: the local message queue (refarch.queue.local.PostgresQueue): SQS FIFO semantics on
-- plain tables, claimed with FOR UPDATE SKIP LOCKED. Several named queues share the tables.
--
-- * queue_messages: waiting and in-flight messages. seq is the delivery order; a message is
--   in flight while visible_at is in the future, and receipt_handle names its latest receive.
-- * queue_dedup: deduplication ids seen in the last 5 minutes (kept after the message is
--   deleted, as SQS does), swept by senders once they expire.
-- * queue_dead_letters: the dead-letter queue, with the error that put each message there.
--
-- Safe to run again: everything is created if missing.

CREATE TABLE IF NOT EXISTS queue_messages (
    seq            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue          text        NOT NULL,
    message_id     uuid        NOT NULL UNIQUE,
    group_id       text        NOT NULL,
    dedup_id       text        NOT NULL,
    body           text        NOT NULL,
    sent_at        timestamptz NOT NULL DEFAULT now(),
    visible_at     timestamptz NOT NULL DEFAULT now(),
    receive_count  integer     NOT NULL DEFAULT 0,
    receipt_handle uuid        UNIQUE
);

-- Oldest-first scans of one queue, and the per-group probes of a receive.
CREATE INDEX IF NOT EXISTS queue_messages_queue_seq ON queue_messages (queue, seq);
CREATE INDEX IF NOT EXISTS queue_messages_group_seq ON queue_messages (queue, group_id, seq);

CREATE TABLE IF NOT EXISTS queue_dedup (
    queue      text        NOT NULL,
    dedup_id   text        NOT NULL,
    message_id uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (queue, dedup_id)
);

CREATE INDEX IF NOT EXISTS queue_dedup_expires_at ON queue_dedup (expires_at);

CREATE TABLE IF NOT EXISTS queue_dead_letters (
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue         text        NOT NULL,
    message_id    uuid        NOT NULL,
    group_id      text        NOT NULL,
    dedup_id      text        NOT NULL,
    body          text        NOT NULL,
    sent_at       timestamptz NOT NULL,
    receive_count integer     NOT NULL,
    error         text,
    dead_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS queue_dead_letters_queue_seq ON queue_dead_letters (queue, seq);

COMMENT ON TABLE queue_messages IS
    'The local queue (SQS FIFO semantics): waiting and in-flight messages of every named queue.';
COMMENT ON TABLE queue_dedup IS
    'Deduplication ids sent in the last 5 minutes, per queue.';
COMMENT ON TABLE queue_dead_letters IS
    'The local dead-letter queue: messages that failed, with the error that put them here.';

REVOKE ALL ON queue_messages, queue_dedup, queue_dead_letters FROM PUBLIC;

-- The relay sends (messages and their deduplication ids); the indexer receives, extends,
-- deletes and dead-letters. Both may read the counts. Redrive is an operator's job (the owner).
-- The roles come from 0002; grant only if they exist, so this file also runs on its own.
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'refarch_relay') THEN
        GRANT SELECT, INSERT ON queue_messages TO refarch_relay;
        GRANT SELECT, INSERT, UPDATE, DELETE ON queue_dedup TO refarch_relay;
        GRANT SELECT ON queue_dead_letters TO refarch_relay;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'refarch_indexer') THEN
        GRANT SELECT, UPDATE, DELETE ON queue_messages TO refarch_indexer;
        GRANT SELECT, INSERT ON queue_dead_letters TO refarch_indexer;
    END IF;
END
$grants$;
