-- Leases on work that one node does at a time (the sweeper, the collector): a lease is held by one holder
-- until `expires_at` (Unix milliseconds); its holder renews it while it works, and a holder that dies
-- stops renewing, so another node takes it over once it expires.
CREATE TABLE leases (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
