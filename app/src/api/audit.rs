//! The audit log viewer's server functions (Owners and Admins).

use leptos::prelude::*;
use tessera_domain::audit::{AuditIntegrity, AuditPage};
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};
#[cfg(feature = "ssr")]
use tessera_domain::audit::AuditFilterInput;

/// What the viewer shows besides the events: who can be chosen as the actor, how long records
/// are kept, and whether the plan allows exporting.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditLogView {
    pub page: AuditPage,
    /// The organization's members, `(user id, name)`, for the actor filter.
    pub people: Vec<(String, String)>,
    pub retention_days: i32,
    /// The plan includes audit log export (CSV, JSON Lines, the REST API).
    pub export: bool,
}

/// A page of the timeline under the filters from the URL (all optional; `cursor` continues).
#[allow(clippy::too_many_arguments)] // one per filter, as the URL names them
#[server(endpoint = "audit_log")]
pub async fn audit_log(
    slug: String,
    actor: Option<String>,
    action: Option<String>,
    target_type: Option<String>,
    target: Option<String>,
    from: Option<String>,
    to: Option<String>,
    ip: Option<String>,
    cursor: Option<String>,
) -> Result<AuditLogView, AppError> {
    let key =
        (slug.clone(), actor.clone(), action.clone(), target_type.clone(), target.clone(), from.clone(), to.clone(), ip.clone(), cursor.clone());
    ssr::once_per_request(key, async move {
        let (_, org) = enter(&slug).await?;
        org.require(tessera_domain::Permission::ViewAudit)?;
        let filter = AuditFilterInput { actor, action, target_type, target, from, to, ip, cursor, limit: None }.parse()?;
        let page = tessera_backend::audit::timeline::page(&org, &filter).await?;
        let members = tessera_backend::members::list(&org).await?;
        let retention_days = tessera_backend::audit::retention::period(&org).await?;
        let people = members.into_iter().map(|m| (m.user_id.to_string(), m.display_name.unwrap_or(m.email))).collect();
        let export = org.require_feature(tessera_domain::billing::Feature::AuditExport).is_ok();
        Ok(AuditLogView { page, people, retention_days, export })
    })
    .await
}

/// Checks both of the organization's hash chains.
#[server(endpoint = "check_audit_integrity")]
pub async fn check_audit_integrity(slug: String) -> Result<AuditIntegrity, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(tessera_backend::audit::integrity(&org).await?)
    })
    .await
}

/// Sets how many days audit records are kept (Owners).
#[server(endpoint = "set_audit_retention")]
pub async fn set_audit_retention(slug: String, days: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let days = tessera_backend::audit::retention::parse_days(&days)?;
    Ok(tessera_backend::audit::retention::set_period(&org, days).await?)
}
