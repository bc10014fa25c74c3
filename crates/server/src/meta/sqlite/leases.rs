//! SQLite: leases on work one node does at a time ([`LeaseRepo`]). One machine runs one node, but the
//! sweeper and the collector take their lease the same way on both backends.

use super::*;
use crate::meta::LeaseRepo;

#[async_trait::async_trait]
impl LeaseRepo for SqliteMeta {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> MetaResult<bool> {
        // The update happens only when the lease is ours or has expired; a row comes back only then.
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(millis(until))
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| failed(format!("taking the lease {name}"), e))?;
        Ok(taken.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> MetaResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(format!("releasing the lease {name}"), e))?;
        Ok(())
    }
}
