//! PostgreSQL: AccessKeys, settings, request nonces and the revocation lists ([`CredentialRepo`]). The
//! nonce table is what makes a replay at another node fail: every node records into the same rows.

use super::*;

#[async_trait::async_trait]
impl CredentialRepo for PostgresMeta {
    async fn create_key(&self, key: &AccessKeyRecord) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO access_keys (id, secret, description, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5)",
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
        sqlx::query("SELECT * FROM access_keys WHERE id = $1")
            .bind(access_key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(format!("reading AccessKey {access_key_id}"), e))?
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
        // Waits for every commit holding the key's row FOR SHARE (its guard): when this returns, no commit
        // of the key is in flight, and none can start that would not see the revocation.
        let done = sqlx::query("UPDATE access_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
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
        // A few dead rows go with every insert, skipping rows another node is reclaiming at the same time.
        sqlx::query(
            "DELETE FROM nonces WHERE digest IN \
             (SELECT digest FROM nonces WHERE expires_at <= $1 ORDER BY expires_at LIMIT 8 FOR UPDATE SKIP LOCKED)",
        )
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .map_err(|e| failed("reclaiming dead nonces", e))?;
        // Two nodes recording one digest at once: the second insert waits for the first and then finds the
        // row live, so exactly one of them is told `true`.
        let recorded = sqlx::query(
            "INSERT INTO nonces (digest, expires_at) VALUES ($1, $2) \
             ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= $3",
        )
        .bind(&digest[..])
        .bind(millis(expires_at))
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .map_err(|e| failed("recording a request nonce", e))?;
        Ok(recorded.rows_affected() > 0)
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
        // Whichever node inserts first wins, and every node then reads that value.
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(initial)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(context(), e))?;
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| failed(context(), e))
    }

    async fn revocations(&self, deleted_since: SystemTime) -> MetaResult<Revocations> {
        let mut tx = self.begin_read("list revocations").await?;
        let revoked_keys =
            sqlx::query_scalar("SELECT id FROM access_keys WHERE revoked_at IS NOT NULL ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| failed("listing revoked AccessKeys", e))?;
        let deleted_media = sqlx::query_scalar("SELECT id FROM media WHERE deleted_at >= $1 ORDER BY id")
            .bind(millis(deleted_since))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| failed("listing deleted media", e))?;
        tx.commit().await.map_err(|e| failed("listing revocations", e))?;
        Ok(Revocations { revoked_keys, deleted_media })
    }
}
