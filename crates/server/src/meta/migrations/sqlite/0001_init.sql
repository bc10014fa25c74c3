-- The first SQLite schema of the metadata store: keys, settings, media and multipart uploads.
--
-- Conventions (shared by every later migration):
-- * Times are INTEGER Unix milliseconds; NULL means "not yet" (revoked_at, completed_at, deleted_at, closed_at).
-- * u64 values (sizes, CRC-64) are stored as INTEGER by bit-casting to i64, so a CRC-64 of 2^63 or more
--   reads back negative in raw SQL but round-trips exactly through SqliteMeta. Never compare them in SQL.
-- * Tables are STRICT so a wrong bind type fails loudly instead of being stored as text.
-- * Media are never removed, only soft-deleted (deleted_at), because revocation must remember them.

CREATE TABLE access_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    -- The AccessKeySecret in clear: it is needed to verify HMAC signatures. This is why the file is 0600.
    secret      TEXT    NOT NULL,
    description TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE media (
    id                    TEXT    NOT NULL PRIMARY KEY,
    kind                  TEXT    NOT NULL CHECK (kind IN ('video', 'image', 'attached')),
    title                 TEXT    NOT NULL,
    description           TEXT    NOT NULL,
    file_name             TEXT    NOT NULL,
    file_ext              TEXT    NOT NULL,
    declared_size         INTEGER,
    cover_url             TEXT    NOT NULL,
    cate_id               INTEGER,
    cate_ids              TEXT    NOT NULL,
    tags                  TEXT    NOT NULL,
    template_group_id     TEXT    NOT NULL,
    workflow_id           TEXT    NOT NULL,
    storage_location      TEXT    NOT NULL,
    app_id                TEXT    NOT NULL,
    user_data             TEXT    NOT NULL,
    reference_id          TEXT    NOT NULL,
    image_type            TEXT    NOT NULL,
    business_type         TEXT    NOT NULL,
    bucket                TEXT    NOT NULL,
    object_key            TEXT    NOT NULL,
    object_prefix         TEXT,
    -- Not a foreign key: the issuing key is checked by the write guard, and a media row must outlive
    -- whatever happens to the key.
    issuing_key_id        TEXT    NOT NULL,
    created_at            INTEGER NOT NULL,
    status                TEXT    NOT NULL CHECK (status IN ('Uploading', 'UploadSucc', 'UploadFail', 'Normal')),
    size                  INTEGER,
    etag                  TEXT,
    crc64                 INTEGER,
    modified_at           INTEGER NOT NULL,
    completed_at          INTEGER,
    deleted_at            INTEGER,
    -- The latest ReportUploadProgress; present exactly when progress_reported_at is not NULL.
    progress_client_ip    TEXT,
    progress_source       TEXT,
    progress_device_model TEXT,
    progress_file_size    INTEGER,
    progress_done_bytes   INTEGER,
    progress_done_parts   INTEGER,
    progress_part_size    INTEGER,
    progress_reported_at  INTEGER
) STRICT;

-- ReferenceId is unique among live media only: empty means "not given", and deleting a video frees its id.
CREATE UNIQUE INDEX media_reference_id ON media (reference_id)
    WHERE reference_id <> '' AND deleted_at IS NULL;

-- GetVideoList: kind = 'video' ordered by CreationTime, with id as the tie-break.
CREATE INDEX media_kind_created ON media (kind, created_at, id);

-- Finding the media that owns an object key (DeleteImage by URL, the data plane's key checks).
CREATE INDEX media_object ON media (bucket, object_key);

-- Revocation refresh: media deleted since an instant.
CREATE INDEX media_deleted_at ON media (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE uploads (
    upload_id    TEXT    NOT NULL PRIMARY KEY,
    bucket       TEXT    NOT NULL,
    object_key   TEXT    NOT NULL,
    media_id     TEXT    REFERENCES media (id),
    content_type TEXT    NOT NULL,
    initiated_at INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('open', 'completed', 'aborted')),
    closed_at    INTEGER
) STRICT;

-- ListMultipartUploads: open uploads of a bucket in (key, upload id) order. BINARY collation compares
-- UTF-8 bytes, which is the order OSS lists keys in.
CREATE INDEX uploads_open_by_key ON uploads (bucket, object_key, upload_id) WHERE state = 'open';

-- Deleting media aborts its open uploads.
CREATE INDEX uploads_open_by_media ON uploads (media_id) WHERE state = 'open';
