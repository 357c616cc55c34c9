//! The audit log over REST, for SIEM pulls: the same timeline, filters and cursor as the viewer,
//! for Owners' and Admins' access tokens and API keys with the `audit_log:read` scope, on plans
//! with audit log export.

use super::{ApiQuery, ApiResult, InOrg, OrgRouteErrors};
use axum::Json;
use tessera_backend::audit::timeline;
use tessera_backend::Backend;
use tessera_domain::audit::{AuditFilterInput, AuditPage};
use tessera_domain::billing::Feature;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<Backend> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The organization's audit events, newest first, a page at a time: follow `next_cursor` (pass
/// it as `cursor` with the same filters) until it is absent. Events from both of the
/// organization's logs (its team and settings; its data) come merged.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/audit-events",
    tag = "audit",
    params(("slug" = String, Path, description = "The organization's URL name"), AuditFilterInput),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events", body = AuditPage),
        (status = 400, description = "The query string names a parameter this endpoint doesn't have", body = super::ErrorBody),
        (status = 422, description = "A filter is invalid; `field` names it", body = super::ErrorBody),
        OrgRouteErrors,
    )
)]
pub async fn list(InOrg(org): InOrg, ApiQuery(filters): ApiQuery<AuditFilterInput>) -> ApiResult<Json<AuditPage>> {
    org.require(tessera_domain::Permission::ViewAudit)?;
    org.require_feature(Feature::AuditExport)?;
    let filter = filters.parse()?;
    Ok(Json(timeline::page(&org, &filter).await?))
}
