//! SQLite: the event outbox ([`EventRepo`]), claimed with leases as on PostgreSQL.

use super::*;

#[async_trait::async_trait]
impl EventRepo for SqliteMeta {
    async fn claim_due_events(
        &self,
        now: SystemTime,
        lease_until: SystemTime,
        limit: u32,
    ) -> MetaResult<Vec<OutboxEvent>> {
        // One statement, and SQLite has one writer: two claims cannot take the same row.
        let rows = sqlx::query(
            "UPDATE events SET next_attempt_at = ? WHERE id IN \
             (SELECT id FROM events WHERE state = 'pending' AND next_attempt_at <= ? \
              ORDER BY next_attempt_at, id LIMIT ?) \
             RETURNING id, media_id, event_type, payload, callback_url, created_at, attempts",
        )
        .bind(millis(lease_until))
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("claiming due events", e))?;
        let mut events = rows.iter().map(event_from_row).collect::<MetaResult<Vec<_>>>()?;
        // RETURNING comes in no promised order.
        events.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(events)
    }

    async fn release_events(
        &self,
        ids: &[String],
        claimed_until: SystemTime,
        now: SystemTime,
    ) -> MetaResult<()> {
        // A batch is a few events; one statement each, in one transaction.
        let mut tx = self.pool.begin().await.map_err(|e| failed("handing back claimed events", e))?;
        for id in ids {
            sqlx::query(
                "UPDATE events SET next_attempt_at = ? WHERE id = ? AND state = 'pending' AND next_attempt_at = ?",
            )
            .bind(millis(now))
            .bind(id)
            .bind(millis(claimed_until))
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(format!("handing back event {id}"), e))?;
        }
        tx.commit().await.map_err(|e| failed("handing back claimed events", e))
    }

    async fn event_delivered(&self, id: &str, at: SystemTime) -> MetaResult<()> {
        self.close_event(id, "delivered", at, "").await
    }

    async fn event_failed(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: SystemTime,
        error: &str,
    ) -> MetaResult<()> {
        sqlx::query(
            "UPDATE events SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(i64::from(attempts))
        .bind(millis(next_attempt_at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(format!("rescheduling event {id}"), e))?;
        Ok(())
    }

    async fn event_given_up(&self, id: &str, at: SystemTime, error: &str) -> MetaResult<()> {
        self.close_event(id, "given_up", at, error).await
    }

    async fn event_counts(&self) -> MetaResult<EventCounts> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM events GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("counting events", e))?;
        let mut counts = EventCounts::default();
        for row in &rows {
            let n = u64::try_from(column::<i64>(row, "n")?).unwrap_or(0);
            match column::<String>(row, "state")?.as_str() {
                "pending" => counts.pending = n,
                "delivered" => counts.delivered = n,
                _ => counts.given_up = n,
            }
        }
        Ok(counts)
    }
}

impl SqliteMeta {
    async fn close_event(&self, id: &str, state: &str, at: SystemTime, error: &str) -> MetaResult<()> {
        sqlx::query(
            "UPDATE events SET state = ?, closed_at = ?, last_error = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(state)
        .bind(millis(at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(format!("closing event {id} as {state}"), e))?;
        Ok(())
    }
}
