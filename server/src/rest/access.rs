//! Who has access to a project over REST: read it, share the project with a member or group,
//! take access away, restrict or open it; and the organization's groups (read-only here:
//! groups are managed by people, in the app).

use super::{ApiResult, Body, ErrorBody, InOrg, OrgRouteErrors};
use crate::input_guard::TextPath;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tessera_backend::access::{self, groups, GranteeRef};
use tessera_backend::{projects, Backend};
use tessera_domain::access::{ProjectRole, Visibility};
use tessera_domain::dto::{Group, ProjectAccess};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<Backend> {
    OpenApiRouter::new()
        .routes(routes!(list, grant))
        .routes(routes!(revoke))
        .routes(routes!(set_visibility))
        .routes(routes!(list_groups))
        .routes(routes!(get_group))
}

/// Who has access to a project: its visibility and its grants to people and groups. Anyone who
/// can see the project may ask.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/projects/{id}/access",
    tag = "access",
    params(("slug" = String, Path, description = "The organization's URL name"), ("id" = String, Path, description = "The project's id (a UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who has access", body = ProjectAccess),
        OrgRouteErrors,
    )
)]
pub async fn list(InOrg(org): InOrg, TextPath((_, id)): TextPath<(String, String)>) -> ApiResult<Json<ProjectAccess>> {
    Ok(Json(access::project_access(&org, project_id(&id)?).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// `user:<id>` for a member of the organization, `group:<id>` for one of its groups.
    #[schema(example = "user:7f1c1c1e-3f57-4c55-9b1e-0d3f4c1c2b11")]
    grantee: String,
    role: ProjectRole,
}

/// Gives a member or group a role on the project, or changes the role they have there. Needs
/// the right to change the project (its creator, a project admin, an Admin or Owner; a key
/// also needs `projects:write`).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{slug}/projects/{id}/access",
    tag = "access",
    params(("slug" = String, Path, description = "The organization's URL name"), ("id" = String, Path, description = "The project's id (a UUID)")),
    request_body = NewGrant,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who has access now", body = ProjectAccess),
        (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
        (status = 409, description = "The organization is read-only right now", body = ErrorBody),
        (status = 422, description = "The grantee isn't a member or group of the organization", body = ErrorBody),
        OrgRouteErrors,
    )
)]
pub async fn grant(InOrg(org): InOrg, TextPath((_, id)): TextPath<(String, String)>, Body(body): Body<NewGrant>) -> ApiResult<Json<ProjectAccess>> {
    let id = project_id(&id)?;
    let grantee = GranteeRef::parse(&body.grantee)?;
    Ok(Json(access::grant(&org, id, grantee, body.role).await?))
}

/// Takes a grant away.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{slug}/projects/{id}/access/{grant_id}",
    tag = "access",
    params(
        ("slug" = String, Path, description = "The organization's URL name"),
        ("id" = String, Path, description = "The project's id (a UUID)"),
        ("grant_id" = String, Path, description = "The grant's id, from the access list"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        OrgRouteErrors,
    )
)]
pub async fn revoke(InOrg(org): InOrg, TextPath((_, id, grant)): TextPath<(String, String, String)>) -> ApiResult<StatusCode> {
    let id = project_id(&id)?;
    let grant = super::path_id(&grant, || tessera_domain::AppError::NotFound("That access was already removed.".into()))?;
    access::revoke(&org, id, grant).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisibilityChange {
    /// `organization`: everyone in it sees the project; `restricted`: only people and groups
    /// given access (and Owners and Admins).
    visibility: Visibility,
}

/// Restricts a project to the people given access, or opens it to the whole organization.
/// Whoever restricts it without a role that sees every project becomes its project admin.
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{slug}/projects/{id}/visibility",
    tag = "access",
    params(("slug" = String, Path, description = "The organization's URL name"), ("id" = String, Path, description = "The project's id (a UUID)")),
    request_body = VisibilityChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who has access now", body = ProjectAccess),
        (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
        (status = 409, description = "The organization is read-only right now", body = ErrorBody),
        OrgRouteErrors,
    )
)]
pub async fn set_visibility(
    InOrg(org): InOrg,
    TextPath((_, id)): TextPath<(String, String)>,
    Body(body): Body<VisibilityChange>,
) -> ApiResult<Json<ProjectAccess>> {
    Ok(Json(access::set_visibility(&org, project_id(&id)?, body.visibility).await?))
}

/// The organization's groups, each with its members.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/groups",
    tag = "access",
    params(("slug" = String, Path, description = "The organization's URL name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The groups", body = Vec<Group>),
        OrgRouteErrors,
    )
)]
pub async fn list_groups(InOrg(org): InOrg) -> ApiResult<Json<Vec<Group>>> {
    Ok(Json(groups::list(&org).await?))
}

/// One group and its members.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/groups/{id}",
    tag = "access",
    params(("slug" = String, Path, description = "The organization's URL name"), ("id" = String, Path, description = "The group's id (a UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group", body = Group),
        OrgRouteErrors,
    )
)]
pub async fn get_group(InOrg(org): InOrg, TextPath((_, id)): TextPath<(String, String)>) -> ApiResult<Json<Group>> {
    let id: Uuid = super::path_id(&id, groups::no_such_group)?;
    Ok(Json(groups::get(&org, id).await?))
}

fn project_id(raw: &str) -> ApiResult<Uuid> {
    super::path_id(raw, projects::no_such_project)
}
