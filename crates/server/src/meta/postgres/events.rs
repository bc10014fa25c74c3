//! PostgreSQL: the event outbox ([`EventRepo`]). Due events are read, not claimed: with one node that is
//! all delivery needs; sharing the outbox between nodes (claims with leases) is a later step.

use super::*;

#[async_trait::async_trait]
impl EventRepo for PostgresMeta {
    async fn due_events(&self, now: SystemTime, limit: u32) -> MetaResult<Vec<OutboxEvent>> {
        let rows = sqlx::query(
            "SELECT id, media_id, event_type, payload, callback_url, created_at, attempts FROM events \
             WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("reading due events", e))?;
        rows.iter().map(event_from_row).collect()
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
            "UPDATE events SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4 AND state = 'pending'",
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
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT state, COUNT(*) FROM events GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("counting events", e))?;
        let mut counts = EventCounts::default();
        for (state, n) in rows {
            let n = n.cast_unsigned();
            match state.as_str() {
                "pending" => counts.pending = n,
                "delivered" => counts.delivered = n,
                _ => counts.given_up = n,
            }
        }
        Ok(counts)
    }
}

impl PostgresMeta {
    async fn close_event(&self, id: &str, state: &str, at: SystemTime, error: &str) -> MetaResult<()> {
        sqlx::query(
            "UPDATE events SET state = $1, closed_at = $2, last_error = $3 WHERE id = $4 AND state = 'pending'",
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
