//! The organization's team over REST (read-only: team changes need a person, in the app).

use super::{ApiResult, InOrg, OrgRouteErrors};
use axum::Json;
use tessera_backend::{members, Backend};
use tessera_domain::dto::Member;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<Backend> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The organization's members and their roles.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/members",
    tag = "members",
    params(("slug" = String, Path, description = "The organization's URL name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The members", body = Vec<Member>),
        OrgRouteErrors,
    )
)]
pub async fn list(InOrg(org): InOrg) -> ApiResult<Json<Vec<Member>>> {
    Ok(Json(members::list(&org).await?))
}
