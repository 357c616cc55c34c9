//! An endpoint's delivery log, and what admins do from it: resend one delivery, replay every
//! failed one since a moment, send a test event.

use super::delivery::Deliver;
use super::endpoints::no_such_endpoint;
use super::events::{emit, Event};
use crate::audit::AuditEntry;
use crate::error::Result;
use crate::members::rfc3339;
use crate::Org;
use serde_json::json;
use tessera_domain::dto::{WebhookAttempt, WebhookDelivery, WebhookDeliveryDetail};
use tessera_domain::input::FieldError;
use tessera_domain::webhooks::EventType;
use tessera_domain::{AppError, Permission};
use time::OffsetDateTime;
use uuid::Uuid;

/// Deliveries a page of the log shows.
pub const PAGE: i64 = tessera_domain::webhooks::DELIVERIES_PER_PAGE;

/// Failed deliveries one replay sends again at most (replay again for the next ones).
pub const REPLAY_LIMIT: i64 = 1000;

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    event_id: Uuid,
    event_type: String,
    status: String,
    attempts: i32,
    created_at: OffsetDateTime,
    next_attempt_at: Option<OffsetDateTime>,
    last_status: Option<i32>,
    last_error: Option<String>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(row: DeliveryRow) -> Self {
        WebhookDelivery {
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            status: row.status,
            attempts: row.attempts,
            created_at: rfc3339(row.created_at),
            next_attempt_at: row.next_attempt_at.map(rfc3339),
            last_response_status: row.last_status,
            last_error: row.last_error,
        }
    }
}

const SELECT_DELIVERY: &str = "SELECT d.id, d.event_id, e.type AS event_type, d.status, d.attempts, d.created_at, d.next_attempt_at,
        d.last_status, d.last_error
   FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id";

/// The endpoint's deliveries, newest first, `PAGE` at a time: `before` is the last one of
/// the previous page; `status` keeps only deliveries in that state.
pub async fn deliveries(org: &Org, endpoint_id: Uuid, status: Option<&str>, before: Option<Uuid>) -> Result<Vec<WebhookDelivery>> {
    if let Some(status) = status {
        if !["held", "pending", "delivered", "failed"].contains(&status) {
            return Err(AppError::Invalid(FieldError::new("status", "Show all deliveries, or those held, pending, delivered or failed.")).into());
        }
    }
    let mut tx = org.read(Permission::ManageWebhooks).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)").bind(endpoint_id).fetch_one(tx.conn()).await?;
    if !exists {
        return Err(no_such_endpoint().into());
    }
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "{SELECT_DELIVERY}
          WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2)
            AND ($3::uuid IS NULL OR (d.created_at, d.id) < (SELECT created_at, id FROM webhook_deliveries WHERE id = $3))
          ORDER BY d.created_at DESC, d.id DESC LIMIT $4"
    ))
    .bind(endpoint_id)
    .bind(status)
    .bind(before)
    .bind(PAGE)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(WebhookDelivery::from).collect())
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    attempted_at: OffsetDateTime,
    duration_ms: i32,
    request_headers: serde_json::Value,
    response_status: Option<i32>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<String>,
    response_truncated: bool,
    error: Option<String>,
}

/// One delivery: the body it sends and each attempt, oldest first.
pub async fn delivery(org: &Org, endpoint_id: Uuid, id: Uuid) -> Result<WebhookDeliveryDetail> {
    let mut tx = org.read(Permission::ManageWebhooks).await?;
    let row: Option<DeliveryRow> = sqlx::query_as(&format!("{SELECT_DELIVERY} WHERE d.id = $1 AND d.endpoint_id = $2"))
        .bind(id)
        .bind(endpoint_id)
        .fetch_optional(tx.conn())
        .await?;
    let row = row.ok_or_else(no_such_delivery)?;
    let payload: String = sqlx::query_scalar("SELECT payload FROM webhook_events WHERE id = $1").bind(row.event_id).fetch_one(tx.conn()).await?;
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "SELECT attempted_at, duration_ms, request_headers, response_status, response_headers, response_body, response_truncated, error
           FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempted_at, id",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    let headers =
        |value: Option<serde_json::Value>| -> Vec<(String, String)> { value.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default() };
    Ok(WebhookDeliveryDetail {
        delivery: row.into(),
        payload,
        attempts: attempts
            .into_iter()
            .map(|a| WebhookAttempt {
                attempted_at: rfc3339(a.attempted_at),
                duration_ms: a.duration_ms,
                request_headers: headers(Some(a.request_headers)),
                response_status: a.response_status,
                response_headers: headers(a.response_headers),
                response_body: a.response_body,
                response_truncated: a.response_truncated,
                error: a.error,
            })
            .collect(),
    })
}

/// Sends a finished delivery again, as it was (same id and body, signed afresh): now, or after
/// the unfinished delivery about the same resource ahead of it. A pending delivery whose attempt
/// is over an hour late lost its job (its last attempt died with its worker, say) and may be
/// resent too.
pub async fn resend(org: &Org, endpoint_id: Uuid, id: Uuid) -> Result<()> {
    let mut tx = org.write(Permission::ManageWebhooks).await?;
    let found: Option<(String, String, bool)> = sqlx::query_as(
        "SELECT status, resource, status = 'pending' AND next_attempt_at < now() - interval '1 hour'
           FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(endpoint_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((status, resource, stale)) = found else { return Err(no_such_delivery().into()) };
    if matches!(status.as_str(), "held" | "pending") && !stale {
        return Err(AppError::Conflict(FieldError::new(
            "delivery",
            "This delivery is still being sent; resend it once it has been delivered or has failed.",
        ))
        .into());
    }
    let now = send_again(&mut tx, endpoint_id, id, &resource).await?;
    let changes = json!({ "status": { "old": status, "new": now } });
    tx.commit(AuditEntry::new("webhook_delivery.resent", "webhook_delivery", id, changes)).await
}

/// Sends again every delivery to the endpoint that failed since `since` (up to
/// [`REPLAY_LIMIT`], oldest first, each in its resource's line). Returns how many.
pub async fn replay_failed(org: &Org, endpoint_id: Uuid, since: OffsetDateTime) -> Result<u64> {
    if since > OffsetDateTime::now_utc() {
        return Err(
            AppError::Invalid(FieldError::new("since", "Choose a moment in the past: deliveries that failed since then are sent again.")).into()
        );
    }
    let mut tx = org.write(Permission::ManageWebhooks).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1 FOR UPDATE)").bind(endpoint_id).fetch_one(tx.conn()).await?;
    if !exists {
        return Err(no_such_endpoint().into());
    }
    // Locked and read again after the lock (a resend may have taken one meanwhile).
    let failed: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, resource FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2
          ORDER BY created_at, id LIMIT $3 FOR UPDATE",
    )
    .bind(endpoint_id)
    .bind(since)
    .bind(REPLAY_LIMIT)
    .fetch_all(tx.conn())
    .await?;
    let mut replayed = 0u64;
    for (id, resource) in &failed {
        let still_failed: bool =
            sqlx::query_scalar("SELECT status = 'failed' FROM webhook_deliveries WHERE id = $1").bind(id).fetch_one(tx.conn()).await?;
        if still_failed {
            send_again(&mut tx, endpoint_id, *id, resource).await?;
            replayed += 1;
        }
    }
    if replayed == 0 {
        return Ok(0);
    }
    let changes = json!({ "replayed": { "new": replayed }, "since": { "new": rfc3339(since) } });
    tx.commit(AuditEntry::new("webhook_endpoint.replayed", "webhook_endpoint", endpoint_id, changes)).await?;
    Ok(replayed)
}

/// Puts a delivery back in its resource's line: sent now if nothing about the same resource to
/// the same endpoint is unfinished, else held behind it (oldest first, so replays keep their
/// order). Returns its new status.
async fn send_again(tx: &mut crate::tenancy::WriteTx, endpoint_id: Uuid, id: Uuid, resource: &str) -> Result<&'static str> {
    super::delivery::lock_resource(tx.conn(), endpoint_id, resource).await?;
    let waiting: bool = sqlx::query_scalar(
        // Ahead of it: one being sent, or one held that is older (ones held behind it wait for it).
        "SELECT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = $1 AND d.resource = $2 AND d.id <> $3
                          AND (d.status = 'pending' OR (d.status = 'held' AND (d.created_at, d.id) < (SELECT created_at, id FROM webhook_deliveries WHERE id = $3))))",
    )
    .bind(endpoint_id)
    .bind(resource)
    .bind(id)
    .fetch_one(tx.conn())
    .await?;
    let status = if waiting { "held" } else { "pending" };
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $2, next_attempt_at = CASE WHEN $2 = 'pending' THEN now() END, finished_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .execute(tx.conn())
    .await?;
    if !waiting {
        tx.enqueue(&Deliver { delivery_id: id }).await?;
    }
    Ok(status)
}

/// Sends a `webhook.test` event to the endpoint alone (even if it is switched off, to check
/// it before switching it on). Returns the delivery's event id.
pub async fn send_test(org: &Org, endpoint_id: Uuid) -> Result<Uuid> {
    let mut tx = org.write(Permission::ManageWebhooks).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)").bind(endpoint_id).fetch_one(tx.conn()).await?;
    if !exists {
        return Err(no_such_endpoint().into());
    }
    let data = json!({
        "endpoint_id": endpoint_id,
        "message": "A test event from Tessera. If you can read this, your endpoint receives and can verify our webhooks.",
    });
    let event = Event { only_endpoint: Some(endpoint_id), ..Event::new(EventType::WebhookTest, endpoint_id, data) };
    let id = emit(&mut tx, event).await?.ok_or_else(no_such_endpoint)?;
    tx.commit(AuditEntry::new("webhook_endpoint.tested", "webhook_endpoint", endpoint_id, json!({ "event": { "new": id } }))).await?;
    Ok(id)
}

fn no_such_delivery() -> AppError {
    AppError::NotFound(format!("That delivery doesn't exist for this endpoint (deliveries are kept for {KEPT_DAYS} days)."))
}

/// How long events and their delivery logs are kept.
pub const KEPT_DAYS: i32 = tessera_domain::webhooks::KEPT_DAYS;

/// Forgets events (with their deliveries and attempts) older than [`KEPT_DAYS`], daily.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct PruneWebhookEvents {}

impl crate::jobs::Job for PruneWebhookEvents {
    const KIND: &'static str = "webhooks.prune";

    async fn run(self, job: &crate::jobs::RunningJob) -> Result<()> {
        let pruned = job.backend.tenancy.prune_webhook_events(KEPT_DAYS).await?;
        if pruned > 0 {
            tracing::info!(pruned, "forgot webhook events past their 30 days");
        }
        Ok(())
    }
}

crate::register_job!(PruneWebhookEvents);
crate::register_schedule!("webhooks.prune", "17 3 * * *", PruneWebhookEvents {});
