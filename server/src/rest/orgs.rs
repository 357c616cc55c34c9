//! An organization's resources, for a member's access token or the organization's API key.
//! Each handler enters through the same door as the pages, so the same permission checks,
//! tenant isolation and audit records apply.

use super::{enter, ApiResult, Body, Credential, ErrorBody, Meta};

/// What every route inside an organization may answer besides its own results (one list, so
/// the routes' documentation can't disagree).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: the answers themselves are `ApiError`s
pub enum OrgRouteErrors {
    /// No credential, or one that is unknown, expired or revoked
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The credential may not do this (role, API key scope, or the organization's sign-in rules)
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such organization for this credential
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A request budget is spent; see Retry-After
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// The organization's data can't be reached right now; try again shortly
    #[response(status = 503)]
    Unavailable(ErrorBody),
}
use crate::input_guard::TextPath;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tessera_backend::{members, projects, Backend};
use tessera_domain::dto::{Member, ProjectSummary};
use tessera_domain::AppError;
use uuid::Uuid;

/// The organization's projects, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/projects",
    tag = "projects",
    params(("slug" = String, Path, description = "The organization's URL name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The projects", body = Vec<ProjectSummary>),
        OrgRouteErrors,
    )
)]
pub async fn list_projects(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath(slug): TextPath<String>,
) -> ApiResult<Json<Vec<ProjectSummary>>> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    Ok(Json(projects::list(&backend.tenancy, &ctx).await?))
}

/// One project.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{slug}/projects/{id}",
    tag = "projects",
    params(("slug" = String, Path, description = "The organization's URL name"), ("id" = String, Path, description = "The project's id (a UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectSummary),
        OrgRouteErrors,
    )
)]
pub async fn get_project(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath((slug, id)): TextPath<(String, String)>,
) -> ApiResult<Json<ProjectSummary>> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    Ok(Json(projects::get(&backend.tenancy, &ctx, project_id(&id)?).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// Up to 100 characters (spaces around it don't count), no control characters; unique in
    /// the organization.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    name: String,
    /// Up to 2,000 characters; line breaks and tabs are the only control characters allowed.
    #[serde(default)]
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    description: String,
}

/// Creates a project (needs a role or key scope that may write projects).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{slug}/projects",
    tag = "projects",
    params(("slug" = String, Path, description = "The organization's URL name")),
    request_body = NewProject,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = ProjectSummary),
        (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
        (status = 409, description = "A project with that name exists, or the organization is read-only right now", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody),
        OrgRouteErrors,
    )
)]
pub async fn create_project(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath(slug): TextPath<String>,
    Body(body): Body<NewProject>,
) -> ApiResult<(StatusCode, Json<ProjectSummary>)> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    Ok((StatusCode::CREATED, Json(projects::create(&backend.tenancy, &ctx, &body.name, &body.description).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectChange {
    /// A new name (same rules as on creation); absent keeps the current one.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    name: Option<String>,
    /// A new description; absent keeps the current one.
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    description: Option<String>,
    /// The project's `updated_at` as you last read it: if someone changed it since, the change
    /// is refused (409) instead of undoing theirs. Absent: the change applies regardless.
    updated_at: Option<String>,
}

/// Changes a project: Members their own, Admins and Owners any (a key also needs `projects:write`).
#[utoipa::path(
    patch,
    path = "/api/v1/orgs/{slug}/projects/{id}",
    tag = "projects",
    params(("slug" = String, Path, description = "The organization's URL name"), ("id" = String, Path, description = "The project's id (a UUID)")),
    request_body = ProjectChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project as it is now", body = ProjectSummary),
        (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
        (status = 409, description = "A project with that name exists, it changed since `updated_at`, or the organization is read-only right now", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody),
        OrgRouteErrors,
    )
)]
pub async fn update_project(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath((slug, id)): TextPath<(String, String)>,
    Body(body): Body<ProjectChange>,
) -> ApiResult<Json<ProjectSummary>> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    let id = project_id(&id)?;
    let change =
        projects::ProjectChange { name: body.name.as_deref(), description: body.description.as_deref(), made_from: body.updated_at.as_deref() };
    Ok(Json(projects::update(&backend.tenancy, &ctx, id, change).await?))
}

/// Deletes a project: Members their own, Admins and Owners any (a key also needs `projects:write`).
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{slug}/projects/{id}",
    tag = "projects",
    params(("slug" = String, Path, description = "The organization's URL name"), ("id" = String, Path, description = "The project's id (a UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The organization is read-only right now", body = ErrorBody),
        OrgRouteErrors,
    )
)]
pub async fn delete_project(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath((slug, id)): TextPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    projects::delete(&backend.tenancy, &ctx, project_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project id from the path. A malformed one names nothing: not found.
fn project_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw.trim()).map_err(|_| projects::no_such_project())
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
pub async fn list_members(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath(slug): TextPath<String>,
) -> ApiResult<Json<Vec<Member>>> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    Ok(Json(members::list(&backend.tenancy, &ctx).await?))
}
