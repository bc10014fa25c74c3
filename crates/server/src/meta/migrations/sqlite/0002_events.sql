-- The event outbox (issue: upload-complete events). A row is written in the same transaction as the
-- status change that causes the event, and delivered at least once by the delivery task.
CREATE TABLE events (
    id              TEXT    NOT NULL PRIMARY KEY,
    media_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    callback_url    TEXT,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'given_up')),
    closed_at       INTEGER,
    last_error      TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX events_due ON events (next_attempt_at) WHERE state = 'pending';
