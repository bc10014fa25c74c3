//! SQLite: AccessKeys, settings, request nonces and the revocation lists ([`CredentialRepo`]).

use super::writer;
use super::*;

/// One nonce insert in this many also removes dead nonces (twice as many as the inserts between, so the
/// table shrinks back after a burst).
const NONCE_RECLAIM_EVERY: u64 = 8;

/// Nonce inserts by this process, for [`NONCE_RECLAIM_EVERY`].
static NONCE_INSERTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[async_trait::async_trait]
impl CredentialRepo for SqliteMeta {
    async fn create_key(&self, key: &AccessKeyRecord) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO access_keys (id, secret, description, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(key.secret.expose())
        .bind(&key.description)
        .bind(millis(key.created_at))
        .bind(key.revoked_at.map(millis))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                MetaError::Conflict(format!("AccessKey {} already exists", key.id))
            } else {
                failed(format!("creating AccessKey {}", key.id), e)
            }
        })?;
        Ok(())
    }

    async fn get_key(&self, access_key_id: &str) -> MetaResult<Option<AccessKeyRecord>> {
        let context = || format!("reading AccessKey {access_key_id}");
        sqlx::query("SELECT * FROM access_keys WHERE id = ?")
            .bind(access_key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(context(), e))?
            .map(|row| key_from_row(&row))
            .transpose()
    }

    async fn list_keys(&self) -> MetaResult<Vec<AccessKeyRecord>> {
        sqlx::query("SELECT * FROM access_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("listing AccessKeys", e))?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn revoke_key(&self, access_key_id: &str, at: SystemTime) -> MetaResult<bool> {
        let done = sqlx::query("UPDATE access_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(millis(at))
            .bind(access_key_id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(format!("revoking AccessKey {access_key_id}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_nonce(
        &self,
        digest: &[u8; 16],
        now: SystemTime,
        expires_at: SystemTime,
    ) -> MetaResult<bool> {
        let digest = *digest;
        // Dead rows go with one insert in [`NONCE_RECLAIM_EVERY`], as many as the inserts between: the
        // table stays at about the live rows, with no sweep, and most inserts are one statement.
        let turn = NONCE_INSERTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reclaim = turn.is_multiple_of(NONCE_RECLAIM_EVERY);
        self.writer
            .write("record a request nonce", move |conn| {
                if reclaim {
                    writer::execute(
                        conn,
                        "DELETE FROM nonces WHERE digest IN \
                         (SELECT digest FROM nonces WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
                        rusqlite::params![millis(now), NONCE_RECLAIM_EVERY as i64 * 2],
                    )
                    .map_err(|e| failed("reclaiming dead nonces", e))?;
                }
                let recorded = writer::execute(
                    conn,
                    "INSERT INTO nonces (digest, expires_at) VALUES (?, ?) \
                     ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?",
                    rusqlite::params![&digest[..], millis(expires_at), millis(now)],
                )
                .map_err(|e| failed("recording a request nonce", e))?;
                Ok(recorded > 0)
            })
            .await
    }

    async fn health_check(&self) -> MetaResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| failed("answering a health check", e))?;
        Ok(())
    }

    async fn get_or_create_setting(&self, name: &str, initial: &str) -> MetaResult<String> {
        let context = || format!("reading or creating setting {name}");
        // The insert is atomic on its own: whichever process inserts first wins, and both then read that value.
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(initial)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(context(), e))?;
        sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| failed(context(), e))
    }

    async fn revocations(&self, deleted_since: SystemTime) -> MetaResult<Revocations> {
        let revoked_keys =
            sqlx::query_scalar("SELECT id FROM access_keys WHERE revoked_at IS NOT NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| failed("listing revoked AccessKeys", e))?;
        let deleted_media = sqlx::query_scalar("SELECT id FROM media WHERE deleted_at >= ? ORDER BY id")
            .bind(millis(deleted_since))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("listing deleted media", e))?;
        Ok(Revocations { revoked_keys, deleted_media })
    }
}
