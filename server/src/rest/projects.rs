//! Projects over REST: list, read, create, change and delete, for a member's access token or
//! an API key with the projects scopes.

use super::{ApiResult, Body, ErrorBody, InOrg, OrgRouteErrors};
use crate::input_guard::TextPath;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tessera_backend::projects::{self, ProjectDraft};
use tessera_backend::Backend;
use tessera_domain::access::Visibility;
use tessera_domain::dto::ProjectSummary;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<Backend> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, update, delete))
}

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
pub async fn list(InOrg(org): InOrg) -> ApiResult<Json<Vec<ProjectSummary>>> {
    Ok(Json(projects::list(&org).await?))
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
pub async fn get(InOrg(org): InOrg, TextPath((_, id)): TextPath<(String, String)>) -> ApiResult<Json<ProjectSummary>> {
    Ok(Json(projects::get(&org, project_id(&id)?).await?))
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
    /// Who sees it: the whole organization (the default), or only the people given access.
    /// A restricted project's creator becomes its project admin.
    #[serde(default)]
    visibility: Visibility,
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
pub async fn create(InOrg(org): InOrg, Body(body): Body<NewProject>) -> ApiResult<(StatusCode, Json<ProjectSummary>)> {
    let draft = ProjectDraft { visibility: body.visibility, ..ProjectDraft::parse(&body.name, &body.description)? };
    Ok((StatusCode::CREATED, Json(projects::create(&org, draft).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectChange {
    /// A new name (same rules as on creation); absent or null keeps the current one.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    name: Option<String>,
    /// A new description; absent or null keeps the current one.
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
pub async fn update(
    InOrg(org): InOrg,
    TextPath((_, id)): TextPath<(String, String)>,
    Body(body): Body<ProjectChange>,
) -> ApiResult<Json<ProjectSummary>> {
    let id = project_id(&id)?;
    let change = projects::ProjectChange::parse(body.name.as_deref(), body.description.as_deref(), body.updated_at.as_deref())?;
    Ok(Json(projects::update(&org, id, change).await?))
}

/// Deletes a project and its documents (up to 1,000 go with it): Members their own, if they
/// wrote every document in it; Admins and Owners any. A key needs `projects:write`, and
/// `documents:write` too when the project holds documents.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{slug}/projects/{id}",
    tag = "projects",
    params(("slug" = String, Path, description = "The organization's URL name"), ("id" = String, Path, description = "The project's id (a UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The organization is read-only right now, or the project holds over 1,000 documents", body = ErrorBody),
        OrgRouteErrors,
    )
)]
pub async fn delete(InOrg(org): InOrg, TextPath((_, id)): TextPath<(String, String)>) -> ApiResult<StatusCode> {
    projects::delete(&org, project_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn project_id(raw: &str) -> ApiResult<Uuid> {
    super::path_id(raw, projects::no_such_project)
}
