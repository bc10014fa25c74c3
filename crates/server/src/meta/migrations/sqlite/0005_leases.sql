-- Leases on work that one node does at a time (the sweeper, the collector): a lease is held by one holder
-- until `expires_at`; its holder renews it while it works, and a holder that dies stops renewing, so
-- another node takes it over once it expires. One machine has one node, but the same code runs on both
-- backends.
CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
