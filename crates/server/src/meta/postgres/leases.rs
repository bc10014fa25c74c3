//! PostgreSQL: leases on work one node does at a time ([`LeaseRepo`]), shared by every node on the
//! database. `INSERT … ON CONFLICT` locks the row it finds, so of two nodes taking an expired lease at once,
//! the second sees the first's renewed row and gets nothing.

use super::*;
use crate::meta::LeaseRepo;

#[async_trait::async_trait]
impl LeaseRepo for PostgresMeta {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> MetaResult<bool> {
        // The update happens only when the lease is ours or has expired; a row comes back only then.
        let taken: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4 \
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
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(format!("releasing the lease {name}"), e))?;
        Ok(())
    }
}
