-- The PostgreSQL schema of the catalogue: the same tables, columns and meanings as the SQLite schema after
-- its migrations 0001-0004 (migrations/sqlite), so both backends decode rows alike (meta/rows.rs).
--
-- Conventions (shared by every later migration):
-- * Times are BIGINT Unix milliseconds; NULL means "not yet" (revoked_at, completed_at, deleted_at, closed_at).
-- * u64 values (sizes, CRC-64) are stored as BIGINT by bit-casting to i64, so a CRC-64 of 2^63 or more
--   reads back negative in raw SQL but round-trips exactly through the backend. Never compare them in SQL.
-- * Every integer is BIGINT: the backend reads integers as i64, and sqlx refuses to read an INTEGER as one.
-- * Ids, buckets and object keys are COLLATE "C": they are compared and ordered as bytes, which is the
--   order OSS lists keys in (and SQLite's BINARY), whatever collation the database was created with.
-- * Media are never removed, only soft-deleted (deleted_at), because revocation must remember them.

CREATE TABLE access_keys (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- The AccessKeySecret in clear: it is needed to verify HMAC signatures. Grant this database to the
    -- service's role only.
    secret      TEXT   NOT NULL,
    description TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE settings (
    name  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE media (
    id                    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind                  TEXT   NOT NULL CHECK (kind IN ('video', 'image', 'attached')),
    title                 TEXT   NOT NULL,
    description           TEXT   NOT NULL,
    file_name             TEXT   NOT NULL,
    file_ext              TEXT   NOT NULL,
    declared_size         BIGINT,
    cover_url             TEXT   NOT NULL,
    cate_id               BIGINT,
    cate_ids              TEXT   NOT NULL,
    tags                  TEXT   NOT NULL,
    template_group_id     TEXT   NOT NULL,
    workflow_id           TEXT   NOT NULL,
    storage_location      TEXT   NOT NULL,
    app_id                TEXT   NOT NULL,
    user_data             TEXT   NOT NULL,
    reference_id          TEXT COLLATE "C" NOT NULL,
    image_type            TEXT   NOT NULL,
    business_type         TEXT   NOT NULL,
    bucket                TEXT COLLATE "C" NOT NULL,
    object_key            TEXT COLLATE "C" NOT NULL,
    object_prefix         TEXT COLLATE "C",
    -- Not a foreign key: the issuing key is checked by the write guard, and a media row must outlive
    -- whatever happens to the key.
    issuing_key_id        TEXT COLLATE "C" NOT NULL,
    created_at            BIGINT NOT NULL,
    status                TEXT   NOT NULL CHECK (status IN ('Uploading', 'UploadSucc', 'UploadFail', 'Normal')),
    size                  BIGINT,
    etag                  TEXT,
    crc64                 BIGINT,
    modified_at           BIGINT NOT NULL,
    completed_at          BIGINT,
    deleted_at            BIGINT,
    -- The latest ReportUploadProgress; present exactly when progress_reported_at is not NULL.
    progress_client_ip    TEXT,
    progress_source       TEXT,
    progress_device_model TEXT,
    progress_file_size    BIGINT,
    progress_done_bytes   BIGINT,
    progress_done_parts   BIGINT,
    progress_part_size    BIGINT,
    progress_reported_at  BIGINT
);

-- ReferenceId is unique among live media only: empty means "not given", and deleting a video frees its id.
-- The backend recognises a violation of it by this name (the constraint of a 23505 error).
CREATE UNIQUE INDEX media_reference_id ON media (reference_id)
    WHERE reference_id <> '' AND deleted_at IS NULL;

-- GetVideoList: kind = 'video' ordered by CreationTime, with id as the tie-break.
CREATE INDEX media_kind_created ON media (kind, created_at, id);

-- Finding the media that owns an object key (DeleteImage by URL, the data plane's key checks).
CREATE INDEX media_object ON media (bucket, object_key);

-- Revocation refresh: media deleted since an instant.
CREATE INDEX media_deleted_at ON media (deleted_at) WHERE deleted_at IS NOT NULL;

-- The sweeper: media still Uploading, by age.
CREATE INDEX media_uploading_created ON media (created_at) WHERE status = 'Uploading' AND deleted_at IS NULL;

CREATE TABLE uploads (
    upload_id    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    bucket       TEXT COLLATE "C" NOT NULL,
    object_key   TEXT COLLATE "C" NOT NULL,
    media_id     TEXT COLLATE "C" REFERENCES media (id),
    content_type TEXT   NOT NULL,
    initiated_at BIGINT NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('open', 'completed', 'aborted')),
    closed_at    BIGINT,
    -- A completed upload's answer, so a repeated identical Complete gets the same one.
    result_etag  TEXT,
    result_crc64 BIGINT
);

-- ListMultipartUploads: open uploads of a bucket in (key, upload id) byte order.
CREATE INDEX uploads_open_by_key ON uploads (bucket, object_key, upload_id) WHERE state = 'open';

-- Deleting media aborts its open uploads.
CREATE INDEX uploads_open_by_media ON uploads (media_id) WHERE state = 'open';

-- The sweeper: open uploads by age.
CREATE INDEX uploads_open_initiated ON uploads (initiated_at) WHERE state = 'open';

-- The event outbox. A row is written in the same transaction as the status change that causes it, and
-- delivered at least once by the delivery task.
CREATE TABLE events (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    media_id        TEXT COLLATE "C" NOT NULL,
    event_type      TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    callback_url    TEXT,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'delivered', 'given_up')),
    closed_at       BIGINT,
    last_error      TEXT   NOT NULL DEFAULT ''
);

CREATE INDEX events_due ON events (next_attempt_at) WHERE state = 'pending';

-- VOD SignatureNonces seen inside the timestamp window, shared by every node on this database. The digest
-- is 16 bytes of SHA-256 over the AccessKeyId and the nonce; a row is dead once expires_at has passed.
CREATE TABLE nonces (
    digest     BYTEA  NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

-- Every blob the catalogue has referenced, and tombstones of blobs being collected.
-- state: 'live' (an object version or an open upload's part references it), 'garbage' (nothing does since
-- released_at; the collector removes it after the grace period), 'collected' (removed or being removed
-- from storage since released_at; the row stays a while so that a commit naming it fails).
CREATE TABLE blobs (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    size        BIGINT NOT NULL,
    state       TEXT   NOT NULL CHECK (state IN ('live', 'garbage', 'collected')),
    created_at  BIGINT NOT NULL,
    released_at BIGINT
);

CREATE INDEX blobs_released ON blobs (state, released_at) WHERE state <> 'live';

-- What each key names now. version_id is new at every commit; object_blobs lists its blobs in order.
CREATE TABLE objects (
    bucket        TEXT COLLATE "C" NOT NULL,
    object_key    TEXT COLLATE "C" NOT NULL,
    version_id    TEXT COLLATE "C" NOT NULL UNIQUE,
    size          BIGINT NOT NULL,
    etag          TEXT   NOT NULL,
    crc64         BIGINT NOT NULL,
    content_md5   BYTEA,
    object_type   TEXT   NOT NULL CHECK (object_type IN ('Normal', 'Multipart')),
    content_type  TEXT,
    -- JSON array of [name, value] pairs, sorted by name.
    user_meta     TEXT   NOT NULL,
    last_modified BIGINT NOT NULL,
    upload_id     TEXT COLLATE "C",
    PRIMARY KEY (bucket, object_key)
);

CREATE TABLE object_blobs (
    version_id TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    blob_id    TEXT COLLATE "C" NOT NULL REFERENCES blobs (id),
    size       BIGINT NOT NULL,
    PRIMARY KEY (version_id, seq)
);

-- Forgetting a collected blob checks that no row references it; without these, every such check would
-- read the whole table.
CREATE INDEX object_blobs_blob ON object_blobs (blob_id);

-- The parts of open uploads. Closing an upload removes its rows (the listed parts' blobs move to the
-- object's version, the others become garbage).
CREATE TABLE parts (
    upload_id   TEXT COLLATE "C" NOT NULL REFERENCES uploads (upload_id),
    part_number BIGINT NOT NULL,
    blob_id     TEXT COLLATE "C" NOT NULL REFERENCES blobs (id),
    size        BIGINT NOT NULL,
    md5         BYTEA  NOT NULL,
    crc64       BIGINT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

CREATE INDEX parts_blob ON parts (blob_id);
