//! PostgreSQL: the collector's side of the catalogue ([`BlobRepo`]): claiming blobs nothing references,
//! and the tombstones that keep a claimed blob from being committed. Claims pass over rows another
//! collector (another node) is claiming at the same moment (`FOR UPDATE SKIP LOCKED`), so each blob is
//! claimed once.

use super::*;
use crate::meta::{BlobCounts, BlobRepo};

#[async_trait::async_trait]
impl BlobRepo for PostgresMeta {
    async fn claim_garbage(
        &self,
        released_before: SystemTime,
        limit: u32,
        at: SystemTime,
    ) -> MetaResult<Vec<String>> {
        sqlx::query_scalar(
            "UPDATE blobs SET state = 'collected', released_at = $1 WHERE id IN \
             (SELECT id FROM blobs WHERE state = 'garbage' AND released_at < $2 ORDER BY released_at LIMIT $3 \
              FOR UPDATE SKIP LOCKED) \
             AND state = 'garbage' RETURNING id",
        )
        .bind(millis(at))
        .bind(millis(released_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("claiming garbage blobs", e))
    }

    async fn claim_orphans(&self, ids: &[String], at: SystemTime) -> MetaResult<Vec<String>> {
        // Most listed blobs are live: sort them out with one read, then write only for the few the
        // catalogue does not know.
        let known: Vec<(String, String)> = sqlx::query_as("SELECT id, state FROM blobs WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("checking listed blobs against the catalogue", e))?;
        let mut claimed = Vec::new();
        let mut unknown = Vec::new();
        for id in ids {
            match known.iter().find(|(k, _)| k == id) {
                None => unknown.push(id.clone()),
                // Collected before, but still in storage: a crash or a failed delete came between.
                Some((_, state)) if state == "collected" => claimed.push(id.clone()),
                Some(_) => {}
            }
        }
        if unknown.is_empty() {
            return Ok(claimed);
        }
        // A commit may have recorded one of them since the read: its insert wins and the tombstone is not
        // written (or the commit waits for the tombstone and fails, as for any claimed blob).
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO blobs (id, size, state, created_at, released_at) \
             SELECT id, 0, 'collected', $2, $2 FROM UNNEST($1::TEXT[]) AS u (id) \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(&unknown)
        .bind(millis(at))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("claiming orphaned blobs", e))?;
        // In the order they were listed, as SQLite answers.
        claimed.extend(unknown.into_iter().filter(|id| inserted.contains(id)));
        Ok(claimed)
    }

    async fn forget_collected(&self, before: SystemTime) -> MetaResult<u64> {
        let done = sqlx::query("DELETE FROM blobs WHERE state = 'collected' AND released_at < $1")
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
