//! An organization's resources, for a member's access token or the organization's API key.
//! Each handler enters through the same door as the pages, so the same permission checks,
//! tenant isolation and audit records apply.

use super::{enter, ApiResult, Body, Credential, Meta};
use crate::input_guard::TextPath;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tessera_backend::{members, projects, Backend};
use tessera_domain::dto::{Member, ProjectSummary};
use tessera_domain::AppError;
use uuid::Uuid;

pub async fn list_projects(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath(slug): TextPath<String>,
) -> ApiResult<Json<Vec<ProjectSummary>>> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    Ok(Json(projects::list(&backend.tenancy, &ctx).await?))
}

pub async fn get_project(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath((slug, id)): TextPath<(String, String)>,
) -> ApiResult<Json<ProjectSummary>> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    let id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound("That project doesn't exist in this organization.".into()))?;
    Ok(Json(projects::get(&backend.tenancy, &ctx, id).await?))
}

#[derive(Deserialize)]
pub struct NewProject {
    name: String,
    #[serde(default)]
    description: String,
}

pub async fn create_project(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath(slug): TextPath<String>,
    Body(body): Body<NewProject>,
) -> ApiResult<(StatusCode, Json<ProjectSummary>)> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    let id = projects::create(&backend.tenancy, &ctx, &body.name, &body.description).await?;
    Ok((StatusCode::CREATED, Json(projects::get(&backend.tenancy, &ctx, id).await?)))
}

pub async fn list_members(
    State(backend): State<Backend>,
    Meta(meta): Meta,
    credential: Credential,
    TextPath(slug): TextPath<String>,
) -> ApiResult<Json<Vec<Member>>> {
    let ctx = enter(&backend, credential, &slug, meta).await?;
    Ok(Json(members::list(&backend.tenancy, &ctx).await?))
}
