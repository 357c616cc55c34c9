//! Notifications: the signed-in person's own, and which kinds also email them.

use leptos::prelude::*;
use tessera_domain::dto::NotificationInbox;
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr;

/// The newest notifications, the unread count and the email preferences.
#[server(endpoint = "my_notifications")]
pub async fn my_notifications() -> Result<NotificationInbox, AppError> {
    let user_id = ssr::require_user().await?;
    Ok(ssr::backend()?.notifications.inbox(user_id).await?)
}

/// Marks one notification read (`id`), or all of them (no `id`). Answers how many are unread.
#[server(endpoint = "mark_notifications_read")]
pub async fn mark_notifications_read(id: Option<String>) -> Result<i64, AppError> {
    let user_id = ssr::require_user().await?;
    let not_found = || AppError::NotFound("That notification doesn't exist (any more).".into());
    let id = id.filter(|id| !id.is_empty()).map(|id| tessera_domain::input::parse_id(&id, not_found)).transpose()?;
    Ok(ssr::backend()?.notifications.mark_read(user_id, id).await?)
}

/// Whether notifications of `kind` also send an email (`email`: "on", or absent for off, as a
/// checkbox sends it).
#[server(endpoint = "set_notification_email")]
pub async fn set_notification_email(kind: String, email: Option<String>) -> Result<(), AppError> {
    let user_id = ssr::require_user().await?;
    Ok(ssr::backend()?.notifications.set_email(user_id, &kind, email.is_some_and(|v| v == "on" || v == "true")).await?)
}
