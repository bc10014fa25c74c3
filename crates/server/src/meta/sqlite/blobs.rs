//! SQLite: the collector's side of the catalogue ([`BlobRepo`]): claiming blobs nothing references, and
//! the tombstones that keep a claimed blob from being committed.

use super::writer;
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
        // Most listed blobs are live: sort them out with reads, so the write lock is held only for the
        // few the catalogue does not know.
        let mut claimed = Vec::new();
        let mut unknown = Vec::new();
        for chunk in ids.chunks(500) {
            let mut query = QueryBuilder::<Sqlite>::new("SELECT id, state FROM blobs WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            list.push_unseparated(")");
            let known: Vec<(String, String)> = query
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| failed("checking listed blobs against the catalogue", e))?;
            for id in chunk {
                match known.iter().find(|(k, _)| k == id) {
                    None => unknown.push(id.clone()),
                    // Collected before, but still in storage: a crash or a failed delete came between.
                    Some((_, state)) if state == "collected" => claimed.push(id.clone()),
                    Some(_) => {}
                }
            }
        }
        if unknown.is_empty() {
            return Ok(claimed);
        }
        self.writer
            .write("claim orphaned blobs", move |conn| {
                for id in unknown {
                    // A commit may have recorded the blob since the read: then the insert does nothing.
                    let inserted = writer::execute(
                        conn,
                        "INSERT INTO blobs (id, size, state, created_at, released_at) \
                         VALUES (?1, 0, 'collected', ?2, ?2) ON CONFLICT (id) DO NOTHING",
                        rusqlite::params![id, millis(at)],
                    )
                    .map_err(|e| failed(format!("claiming orphaned blob {id}"), e))?;
                    if inserted == 1 {
                        claimed.push(id);
                    }
                }
                Ok(claimed)
            })
            .await
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
