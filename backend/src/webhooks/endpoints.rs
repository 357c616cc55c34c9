//! An organization's webhook endpoints: registered, changed, rotated and removed by its Owners
//! and Admins, each change audited (never with a secret in it).

use super::Webhooks;
use crate::audit::{self, AuditEntry};
use crate::error::Result;
use crate::members::rfc3339;
use crate::Org;
use serde_json::json;
use tessera_domain::dto::{NewWebhookSecret, WebhookEndpoint};
use tessera_domain::input::FieldError;
use tessera_domain::webhooks::{parse_event_types, EventType, WebhookDescription, WebhookUrl, ROTATION_OVERLAP_HOURS};
use tessera_domain::{AppError, Permission};
use time::OffsetDateTime;
use uuid::Uuid;

/// Endpoints an organization may have: enough for every integration, few enough that one
/// event can't fan out into thousands of requests.
pub const MAX_ENDPOINTS: i64 = 20;

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    url: String,
    description: String,
    event_types: Vec<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<OffsetDateTime>,
    previous_secret_until: Option<OffsetDateTime>,
    created_by: Uuid,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    delivered_24h: i64,
    failed_24h: i64,
    pending: i64,
}

const SELECT_ENDPOINT: &str = "SELECT p.id, p.url, p.description, p.event_types, p.enabled, p.disabled_reason, p.failing_since,
        CASE WHEN p.previous_secret_until > now() THEN p.previous_secret_until END AS previous_secret_until,
        p.created_by, p.created_at, p.updated_at,
        (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = p.id AND d.status = 'delivered' AND d.finished_at > now() - interval '24 hours') AS delivered_24h,
        (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = p.id AND d.status = 'failed' AND d.finished_at > now() - interval '24 hours') AS failed_24h,
        (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = p.id AND d.status IN ('held', 'pending')) AS pending
   FROM webhook_endpoints p";

/// An endpoint's settings, parsed at the edge.
pub struct EndpointDraft {
    pub url: WebhookUrl,
    pub description: WebhookDescription,
    pub event_types: Vec<EventType>,
    pub enabled: bool,
}

impl EndpointDraft {
    /// `allow_http`: the deployment lets endpoints be `http://` ([`Webhooks::private_hosts`]).
    pub fn parse<S: AsRef<str>>(url: &str, description: &str, event_types: &[S], enabled: bool, webhooks: &Webhooks) -> Result<Self, FieldError> {
        let url = WebhookUrl::parse(url, webhooks.private_hosts())?;
        if !webhooks.private_hosts() {
            refuse_private_literal(&url)?;
        }
        Ok(Self { url, description: WebhookDescription::parse(description)?, event_types: parse_event_types(event_types)?, enabled })
    }

    fn type_names(&self) -> Vec<&'static str> {
        self.event_types.iter().map(|t| t.as_str()).collect()
    }
}

/// An endpoint at `localhost` or a private address literal can never be delivered to: said now,
/// on the field, rather than in a failed delivery later. (Names resolving to private
/// addresses are refused at delivery, where the address is known.)
fn refuse_private_literal(url: &WebhookUrl) -> Result<(), FieldError> {
    let parsed = reqwest::Url::parse(url.as_str()).map_err(|_| FieldError::new("url", "That URL can't be used. Check it for typos."))?;
    let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let private = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => !crate::sso::outbound::is_public(ip),
        Err(_) => host == "localhost" || host.ends_with(".localhost") || host.ends_with(".internal") || host.ends_with(".local"),
    };
    if private {
        return Err(FieldError::new("url", "Webhooks go only to addresses on the public internet, not to private, loopback or internal hosts."));
    }
    Ok(())
}

fn summary(row: EndpointRow, names: &std::collections::HashMap<Uuid, String>) -> WebhookEndpoint {
    WebhookEndpoint {
        id: row.id,
        url: row.url,
        description: row.description,
        event_types: row.event_types,
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        failing_since: row.failing_since.map(rfc3339),
        previous_secret_until: row.previous_secret_until.map(rfc3339),
        created_by: names.get(&row.created_by).cloned().unwrap_or_else(|| "a former member".into()),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        delivered_24h: row.delivered_24h,
        failed_24h: row.failed_24h,
        pending: row.pending,
    }
}

async fn summaries(org: &Org, rows: Vec<EndpointRow>) -> Result<Vec<WebhookEndpoint>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.created_by).collect();
    let names = org.display_names(&ids).await?;
    Ok(rows.into_iter().map(|row| summary(row, &names)).collect())
}

pub async fn list(org: &Org) -> Result<Vec<WebhookEndpoint>> {
    let mut tx = org.read(Permission::ManageWebhooks).await?;
    let rows: Vec<EndpointRow> = sqlx::query_as(&format!("{SELECT_ENDPOINT} ORDER BY p.created_at, p.id")).fetch_all(tx.conn()).await?;
    drop(tx);
    summaries(org, rows).await
}

pub async fn get(org: &Org, id: Uuid) -> Result<WebhookEndpoint> {
    let mut tx = org.read(Permission::ManageWebhooks).await?;
    let row: Option<EndpointRow> = sqlx::query_as(&format!("{SELECT_ENDPOINT} WHERE p.id = $1")).bind(id).fetch_optional(tx.conn()).await?;
    drop(tx);
    Ok(summaries(org, vec![row.ok_or_else(no_such_endpoint)?]).await?.remove(0))
}

/// Registers an endpoint. Returns it and its signing secret (the only time it is shown).
pub async fn create(org: &Org, webhooks: &Webhooks, draft: EndpointDraft) -> Result<(WebhookEndpoint, NewWebhookSecret)> {
    let mut tx = org.write(Permission::ManageWebhooks).await?;
    require_plan(org)?;
    // Counted under a lock on the organization's endpoints, so two at once can't pass the cap.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("webhook-endpoints:{}", org.tenant.id))
        .execute(tx.conn())
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints").fetch_one(tx.conn()).await?;
    if count >= MAX_ENDPOINTS {
        return Err(AppError::Invalid(FieldError::new(
            "url",
            format!("An organization can have {MAX_ENDPOINTS} endpoints. Remove one you no longer use, or send several event types to one endpoint."),
        ))
        .into());
    }
    let id = Uuid::new_v4();
    let secret = super::new_secret();
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, description, event_types, enabled, secret_sealed, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(draft.url.as_str())
    .bind(draft.description.as_str())
    .bind(draft.type_names())
    .bind(draft.enabled)
    .bind(webhooks.seal(&secret))
    .bind(org.user_id)
    .execute(tx.conn())
    .await?;
    let mut changes = audit::created(&[("url", draft.url.as_str()), ("description", draft.description.as_str())]);
    changes["event_types"] = json!({ "new": draft.type_names() });
    changes["enabled"] = json!({ "new": draft.enabled });
    tx.commit(AuditEntry::new("webhook_endpoint.created", "webhook_endpoint", id, changes)).await?;
    let endpoint = get(org, id).await?;
    Ok((endpoint, NewWebhookSecret { endpoint_id: id, secret, previous_secret_until: None }))
}

/// Replaces an endpoint's settings. Switching it on again clears an automatic switch-off.
/// Webhooks are a feature of the plan (`webhooks` in `billing/plans.toml`): adding or switching
/// on an endpoint needs it.
fn require_plan(org: &Org) -> Result<()> {
    Ok(org.require_feature(tessera_domain::billing::Feature::Webhooks)?)
}

pub async fn update(org: &Org, id: Uuid, draft: EndpointDraft) -> Result<WebhookEndpoint> {
    let mut tx = org.write(Permission::ManageWebhooks).await?;
    let before: Option<(String, String, Vec<String>, bool)> =
        sqlx::query_as("SELECT url, description, event_types, enabled FROM webhook_endpoints WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let (url, description, types, enabled) = before.ok_or_else(no_such_endpoint)?;
    if draft.enabled && !enabled {
        require_plan(org)?;
    }
    let mut changes = audit::changed(&[("url", &url, draft.url.as_str()), ("description", &description, draft.description.as_str())]);
    let new_types: Vec<String> = draft.type_names().into_iter().map(String::from).collect();
    if types != new_types {
        changes["event_types"] = json!({ "old": types, "new": new_types });
    }
    if enabled != draft.enabled {
        changes["enabled"] = json!({ "old": enabled, "new": draft.enabled });
    }
    if changes.as_object().is_some_and(|c| c.is_empty()) {
        drop(tx);
        return get(org, id).await;
    }
    sqlx::query(
        "UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, enabled = $5, updated_at = clock_timestamp(),
                disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END
          WHERE id = $1",
    )
    .bind(id)
    .bind(draft.url.as_str())
    .bind(draft.description.as_str())
    .bind(&new_types)
    .bind(draft.enabled)
    .execute(tx.conn())
    .await?;
    tx.commit(AuditEntry::new("webhook_endpoint.updated", "webhook_endpoint", id, changes)).await?;
    get(org, id).await
}

/// A new signing secret; the current one keeps signing too for [`ROTATION_OVERLAP_HOURS`]
/// (a secret from an earlier rotation still in its overlap stops at once).
pub async fn rotate_secret(org: &Org, webhooks: &Webhooks, id: Uuid) -> Result<NewWebhookSecret> {
    let mut tx = org.write(Permission::ManageWebhooks).await?;
    let secret = super::new_secret();
    let until: Option<OffsetDateTime> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, secret_sealed = $2,
                previous_secret_until = now() + make_interval(hours => $3), updated_at = clock_timestamp()
          WHERE id = $1 RETURNING previous_secret_until",
    )
    .bind(id)
    .bind(webhooks.seal(&secret))
    .bind(ROTATION_OVERLAP_HOURS as i32)
    .fetch_optional(tx.conn())
    .await?;
    let until = until.ok_or_else(no_such_endpoint)?;
    let changes = json!({ "secret": { "old": "(redacted)", "new": "(redacted)" }, "previous_secret_until": { "new": rfc3339(until) } });
    tx.commit(AuditEntry::new("webhook_endpoint.secret_rotated", "webhook_endpoint", id, changes)).await?;
    Ok(NewWebhookSecret { endpoint_id: id, secret, previous_secret_until: Some(rfc3339(until)) })
}

/// Removes an endpoint with its delivery log; deliveries under way stop.
pub async fn delete(org: &Org, id: Uuid) -> Result<()> {
    let mut tx = org.write_removal(Permission::ManageWebhooks).await?;
    let before: Option<(String, String, Vec<String>)> =
        sqlx::query_as("DELETE FROM webhook_endpoints WHERE id = $1 RETURNING url, description, event_types")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let (url, description, types) = before.ok_or_else(no_such_endpoint)?;
    let mut changes = audit::removed(&[("url", &url), ("description", &description)]);
    changes["event_types"] = json!({ "old": types });
    tx.commit(AuditEntry::new("webhook_endpoint.deleted", "webhook_endpoint", id, changes)).await
}

pub fn no_such_endpoint() -> AppError {
    AppError::NotFound("That webhook endpoint doesn't exist in this organization.".into())
}
