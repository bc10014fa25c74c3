//! PostgreSQL: the event outbox ([`EventRepo`]), shared by every node through claims with leases.

use super::*;

#[async_trait::async_trait]
impl EventRepo for PostgresMeta {
    async fn claim_due_events(
        &self,
        now: SystemTime,
        lease_until: SystemTime,
        limit: u32,
    ) -> MetaResult<Vec<OutboxEvent>> {
        // Rows another node is claiming at this moment are passed over (SKIP LOCKED); the outer condition
        // is checked again on the locked row, so an event claimed meanwhile is not taken twice.
        let rows = sqlx::query(
            "UPDATE events SET next_attempt_at = $1 WHERE id IN \
             (SELECT id FROM events WHERE state = 'pending' AND next_attempt_at <= $2 \
              ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             AND state = 'pending' AND next_attempt_at <= $2 \
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
        sqlx::query(
            "UPDATE events SET next_attempt_at = $1 WHERE id = ANY($2) AND state = 'pending' AND next_attempt_at = $3",
        )
        .bind(millis(now))
        .bind(ids)
        .bind(millis(claimed_until))
        .execute(&self.pool)
        .await
        .map_err(|e| failed("handing back claimed events", e))?;
        Ok(())
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
