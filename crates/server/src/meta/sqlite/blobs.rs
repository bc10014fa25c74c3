//! SQLite: the collector's side of the catalogue ([`BlobRepo`]): claiming blobs nothing references, and
//! the tombstones that keep a claimed blob from being committed.

use super::*;
use crate::meta::{BlobCounts, BlobRepo};

#[async_trait::async_trait]
impl BlobRepo for SqliteMeta {
    async fn claim_garbage(
        &self,
        released_before: SystemTime,
        limit: u32,
        at: SystemTime,
    ) -> MetaResult<Vec<String>> {
        sqlx::query_scalar(
            "UPDATE blobs SET state = 'collected', released_at = ? WHERE id IN \
             (SELECT id FROM blobs WHERE state = 'garbage' AND released_at < ? ORDER BY released_at LIMIT ?) \
             RETURNING id",
        )
        .bind(millis(at))
        .bind(millis(released_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("claiming garbage blobs", e))
    }

    async fn claim_orphans(&self, ids: &[String], at: SystemTime) -> MetaResult<Vec<String>> {
        let mut tx = self.begin_write("claim orphaned blobs").await?;
        let mut claimed = Vec::new();
        for id in ids {
            let context = || format!("claiming orphaned blob {id}");
            let inserted = sqlx::query(
                "INSERT INTO blobs (id, size, state, created_at, released_at) VALUES (?, 0, 'collected', ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(millis(at))
            .bind(millis(at))
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(context(), e))?;
            if inserted.rows_affected() == 1 {
                claimed.push(id.clone());
                continue;
            }
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM blobs WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| failed(context(), e))?;
            // Collected before, but still in storage: a crash or a failed delete came between.
            if state.as_deref() == Some("collected") {
                claimed.push(id.clone());
            }
        }
        tx.commit().await.map_err(|e| failed("committing claims of orphaned blobs", e))?;
        Ok(claimed)
    }

    async fn forget_collected(&self, before: SystemTime) -> MetaResult<u64> {
        let done = sqlx::query("DELETE FROM blobs WHERE state = 'collected' AND released_at < ?")
            .bind(millis(before))
            .execute(&self.pool)
            .await
            .map_err(|e| failed("forgetting collected blobs", e))?;
        Ok(done.rows_affected())
    }

    async fn blob_counts(&self) -> MetaResult<BlobCounts> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT state, COUNT(*) FROM blobs GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("counting blobs", e))?;
        let mut counts = BlobCounts::default();
        for (state, n) in rows {
            let n = n.cast_unsigned();
            match state.as_str() {
                "live" => counts.live = n,
                "garbage" => counts.garbage = n,
                _ => counts.collected = n,
            }
        }
        Ok(counts)
    }
}
