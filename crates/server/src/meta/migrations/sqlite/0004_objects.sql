-- The catalogue owns objects (issue: catalogue commits). Blob storage holds immutable bytes under ids the
-- service chose; these tables say which blobs each key names and which belong to open uploads, so every
-- commit (PutObject, CompleteMultipartUpload, AbortMultipartUpload, DeleteObject) is one transaction here.

-- Every blob the catalogue has referenced, and tombstones of blobs being collected.
-- state: 'live' (an object version or an open upload's part references it), 'garbage' (nothing does since
-- released_at; the collector removes it after the grace period), 'collected' (removed or being removed
-- from storage since released_at; the row stays a while so that a commit naming it fails).
CREATE TABLE blobs (
    id          TEXT    NOT NULL PRIMARY KEY,
    size        INTEGER NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('live', 'garbage', 'collected')),
    created_at  INTEGER NOT NULL,
    released_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX blobs_released ON blobs (state, released_at) WHERE state <> 'live';

-- What each key names now. version_id is new at every commit; object_blobs lists its blobs in order.
CREATE TABLE objects (
    bucket        TEXT    NOT NULL,
    object_key    TEXT    NOT NULL,
    version_id    TEXT    NOT NULL UNIQUE,
    size          INTEGER NOT NULL,
    etag          TEXT    NOT NULL,
    crc64         INTEGER NOT NULL,
    content_md5   BLOB,
    object_type   TEXT    NOT NULL CHECK (object_type IN ('Normal', 'Multipart')),
    content_type  TEXT,
    -- JSON array of [name, value] pairs, sorted by name.
    user_meta     TEXT    NOT NULL,
    last_modified INTEGER NOT NULL,
    upload_id     TEXT,
    PRIMARY KEY (bucket, object_key)
) STRICT;

CREATE TABLE object_blobs (
    version_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    blob_id    TEXT    NOT NULL REFERENCES blobs (id),
    size       INTEGER NOT NULL,
    PRIMARY KEY (version_id, seq)
) STRICT, WITHOUT ROWID;

-- The parts of open uploads. Closing an upload removes its rows (the listed parts' blobs move to the
-- object's version, the others become garbage).
CREATE TABLE parts (
    upload_id   TEXT    NOT NULL REFERENCES uploads (upload_id),
    part_number INTEGER NOT NULL,
    blob_id     TEXT    NOT NULL REFERENCES blobs (id),
    size        INTEGER NOT NULL,
    md5         BLOB    NOT NULL,
    crc64       INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) STRICT, WITHOUT ROWID;

-- A completed upload's answer, so a repeated identical Complete gets the same one.
ALTER TABLE uploads ADD COLUMN result_etag TEXT;
ALTER TABLE uploads ADD COLUMN result_crc64 INTEGER;
