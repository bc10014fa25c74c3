-- VOD SignatureNonces seen inside the timestamp window, so a request replayed after a restart (and, with a
-- shared catalogue, at another node) is still refused. The digest is 16 bytes of SHA-256 over the
-- AccessKeyId and the nonce; a row is dead once expires_at (ms since the epoch) has passed.
CREATE TABLE nonces (
    digest      BLOB    NOT NULL PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX nonces_by_expiry ON nonces (expires_at);
