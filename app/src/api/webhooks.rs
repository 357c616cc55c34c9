//! Outgoing webhooks: the server functions of the webhooks slice (Owners and Admins).

use leptos::prelude::*;
use tessera_domain::dto::{NewWebhookSecret, WebhookDelivery, WebhookDeliveryDetail, WebhookEndpoint, WebhookEndpoints};
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};
#[cfg(feature = "ssr")]
use tessera_backend::webhooks::{endpoints, endpoints::EndpointDraft, log};

#[server(endpoint = "list_webhooks")]
pub async fn list_webhooks(slug: String) -> Result<WebhookEndpoints, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (backend, org) = enter(&slug).await?;
        Ok(WebhookEndpoints {
            endpoints: endpoints::list(&org).await?,
            allow_http: backend.webhooks.private_hosts(),
            max_endpoints: endpoints::MAX_ENDPOINTS,
        })
    })
    .await
}

#[server(endpoint = "get_webhook")]
pub async fn get_webhook(slug: String, id: String) -> Result<WebhookEndpoint, AppError> {
    ssr::once_per_request((slug.clone(), id.clone()), async move {
        let (_, org) = enter(&slug).await?;
        Ok(endpoints::get(&org, ssr::parse_id(&id, "webhook endpoint")?).await?)
    })
    .await
}

/// Registers an endpoint (after a recent sign-in: it sends the organization's data out).
/// `event_types`: the ticked checkboxes; `enabled`: present when ticked. Returns its secret,
/// shown this once.
#[server(endpoint = "create_webhook")]
pub async fn create_webhook(
    slug: String,
    url: String,
    description: String,
    event_types: Option<Vec<String>>,
    enabled: Option<String>,
) -> Result<NewWebhookSecret, AppError> {
    let (backend, org) = enter(&slug).await?;
    let draft = EndpointDraft::parse(&url, &description, &event_types.unwrap_or_default(), enabled.is_some(), &backend.webhooks)?;
    ssr::require_recent_auth().await?;
    Ok(endpoints::create(&org, &backend.webhooks, draft).await?.1)
}

/// Replaces an endpoint's settings (after a recent sign-in, as creating one).
#[server(endpoint = "update_webhook")]
pub async fn update_webhook(
    slug: String,
    id: String,
    url: String,
    description: String,
    event_types: Option<Vec<String>>,
    enabled: Option<String>,
) -> Result<WebhookEndpoint, AppError> {
    let (backend, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "webhook endpoint")?;
    let draft = EndpointDraft::parse(&url, &description, &event_types.unwrap_or_default(), enabled.is_some(), &backend.webhooks)?;
    ssr::require_recent_auth().await?;
    Ok(endpoints::update(&org, id, draft).await?)
}

/// A new signing secret (shown this once); the old one keeps signing for 24 hours.
#[server(endpoint = "rotate_webhook_secret")]
pub async fn rotate_webhook_secret(slug: String, id: String) -> Result<NewWebhookSecret, AppError> {
    let (backend, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "webhook endpoint")?;
    ssr::require_recent_auth().await?;
    Ok(endpoints::rotate_secret(&org, &backend.webhooks, id).await?)
}

#[server(endpoint = "delete_webhook")]
pub async fn delete_webhook(slug: String, id: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    endpoints::delete(&org, ssr::parse_id(&id, "webhook endpoint")?).await?;
    leptos_axum::redirect(&format!("/t/{}/settings/webhooks", org.tenant.slug));
    Ok(())
}

/// The endpoint's deliveries, newest first, 50 at a time (`before`: the last id shown);
/// `status`: empty for all, or held / pending / delivered / failed.
#[server(endpoint = "list_webhook_deliveries")]
pub async fn list_webhook_deliveries(
    slug: String,
    id: String,
    status: Option<String>,
    before: Option<String>,
) -> Result<Vec<WebhookDelivery>, AppError> {
    let (_, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "webhook endpoint")?;
    let before = before.filter(|b| !b.is_empty()).map(|b| ssr::parse_id(&b, "delivery")).transpose()?;
    Ok(log::deliveries(&org, id, status.as_deref().filter(|s| !s.is_empty()), before).await?)
}

#[server(endpoint = "get_webhook_delivery")]
pub async fn get_webhook_delivery(slug: String, id: String, delivery: String) -> Result<WebhookDeliveryDetail, AppError> {
    let (_, org) = enter(&slug).await?;
    Ok(log::delivery(&org, ssr::parse_id(&id, "webhook endpoint")?, ssr::parse_id(&delivery, "delivery")?).await?)
}

#[server(endpoint = "resend_webhook_delivery")]
pub async fn resend_webhook_delivery(slug: String, id: String, delivery: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    Ok(log::resend(&org, ssr::parse_id(&id, "webhook endpoint")?, ssr::parse_id(&delivery, "delivery")?).await?)
}

/// Sends again every delivery that failed since `since` (RFC 3339, or a `datetime-local`
/// value read as UTC). Returns how many.
#[server(endpoint = "replay_webhook_failures")]
pub async fn replay_webhook_failures(slug: String, id: String, since: String) -> Result<u64, AppError> {
    use tessera_domain::input::FieldError;
    let (_, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "webhook endpoint")?;
    let since = parse_moment(&since).ok_or_else(|| AppError::Invalid(FieldError::new("since", "Enter a date and time, e.g. 2026-12-09 14:30.")))?;
    Ok(log::replay_failed(&org, id, since).await?)
}

#[server(endpoint = "send_webhook_test")]
pub async fn send_webhook_test(slug: String, id: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    log::send_test(&org, ssr::parse_id(&id, "webhook endpoint")?).await?;
    Ok(())
}

/// RFC 3339, or what a `datetime-local` field sends (`2026-12-09T14:30`, taken as UTC).
#[cfg(feature = "ssr")]
fn parse_moment(raw: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let raw = raw.trim();
    if let Ok(at) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(at);
    }
    let local = if raw.len() == 16 { format!("{raw}:00Z") } else { format!("{raw}Z") };
    time::OffsetDateTime::parse(&local.replace(' ', "T"), &Rfc3339).ok()
}
