//! Documents over REST: list a project's documents, read, write, change and delete one, for a
//! member's access token or an API key with the documents scopes.

use super::{path_id, ApiResult, Body, ErrorBody, InOrg, OrgRouteErrors};
use crate::input_guard::TextPath;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tessera_backend::documents::{self, DocumentChange, DocumentDraft};
use tessera_backend::{projects, Backend};
use tessera_domain::dto::{Document, DocumentSummary};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<Backend> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, update, delete))
}

/// The project's and the document's ids from the path.
fn ids(project: &str, id: &str) -> ApiResult<(Uuid, Uuid)> {
    Ok((path_id(project, projects::no_such_project)?, path_id(id, documents::no_such_document)?))
}

/// A project's documents, most recently changed first, each with the start of its text (read a
/// document for all of it).
#[utoipa::path(get, path = "/api/v1/orgs/{slug}/projects/{project}/documents", tag = "documents",
    params(("slug" = String, Path, description = "The organization's URL name"), ("project" = String, Path, description = "The project's id")),
    security(("bearer" = [])), responses((status = 200, description = "The documents", body = Vec<DocumentSummary>), OrgRouteErrors))]
pub async fn list(InOrg(org): InOrg, TextPath((_, project)): TextPath<(String, String)>) -> ApiResult<Json<Vec<DocumentSummary>>> {
    Ok(Json(documents::list(&org, path_id(&project, projects::no_such_project)?).await?.documents))
}

/// One document, all of its text.
#[utoipa::path(get, path = "/api/v1/orgs/{slug}/projects/{project}/documents/{id}", tag = "documents",
    params(("slug" = String, Path, description = "The organization's URL name"), ("project" = String, Path, description = "The project's id"),
           ("id" = String, Path, description = "The document's id")),
    security(("bearer" = [])), responses((status = 200, description = "The document", body = Document), OrgRouteErrors))]
pub async fn get(InOrg(org): InOrg, TextPath((_, project, id)): TextPath<(String, String, String)>) -> ApiResult<Json<Document>> {
    let (project, id) = ids(&project, &id)?;
    Ok(Json(documents::get(&org, project, id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    /// One line, up to 200 characters (spaces around it don't count).
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    title: String,
    /// Up to 50,000 characters; line breaks and tabs are the only control characters allowed.
    #[serde(default)]
    #[schema(max_length = 50000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    body: String,
}

/// Writes a document in the project (a role or key that may write documents).
#[utoipa::path(post, path = "/api/v1/orgs/{slug}/projects/{project}/documents", tag = "documents", request_body = NewDocument,
    params(("slug" = String, Path, description = "The organization's URL name"), ("project" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Document), (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
              (status = 409, description = "The organization is read-only right now", body = ErrorBody),
              (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody), OrgRouteErrors))]
pub async fn create(
    InOrg(org): InOrg,
    TextPath((_, project)): TextPath<(String, String)>,
    Body(body): Body<NewDocument>,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let draft = DocumentDraft::parse(&body.title, &body.body)?;
    Ok((StatusCode::CREATED, Json(documents::create(&org, path_id(&project, projects::no_such_project)?, draft).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentPatch {
    /// A new title (same rules as on creation); absent or null keeps the current one.
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    title: Option<String>,
    /// New text; absent or null keeps the current one.
    #[schema(max_length = 50000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    body: Option<String>,
    /// The document's `updated_at` as you last read it: if someone changed it since, the change
    /// is refused (409) instead of undoing theirs. Absent: the change applies regardless.
    updated_at: Option<String>,
}

/// Changes a document: Members their own, Admins and Owners any (a key also needs `documents:write`).
#[utoipa::path(patch, path = "/api/v1/orgs/{slug}/projects/{project}/documents/{id}", tag = "documents", request_body = DocumentPatch,
    params(("slug" = String, Path, description = "The organization's URL name"), ("project" = String, Path, description = "The project's id"),
           ("id" = String, Path, description = "The document's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The document as it is now", body = Document),
              (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
              (status = 409, description = "It changed since `updated_at`, or the organization is read-only right now", body = ErrorBody),
              (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody), OrgRouteErrors))]
pub async fn update(
    InOrg(org): InOrg,
    TextPath((_, project, id)): TextPath<(String, String, String)>,
    Body(body): Body<DocumentPatch>,
) -> ApiResult<Json<Document>> {
    let (project, id) = ids(&project, &id)?;
    let change = DocumentChange::parse(body.title.as_deref(), body.body.as_deref(), body.updated_at.as_deref())?;
    Ok(Json(documents::update(&org, project, id, change).await?))
}

/// Deletes a document: Members their own, Admins and Owners any (a key also needs `documents:write`).
#[utoipa::path(delete, path = "/api/v1/orgs/{slug}/projects/{project}/documents/{id}", tag = "documents",
    params(("slug" = String, Path, description = "The organization's URL name"), ("project" = String, Path, description = "The project's id"),
           ("id" = String, Path, description = "The document's id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 409, description = "The organization is read-only right now", body = ErrorBody), OrgRouteErrors))]
pub async fn delete(InOrg(org): InOrg, TextPath((_, project, id)): TextPath<(String, String, String)>) -> ApiResult<StatusCode> {
    let (project, id) = ids(&project, &id)?;
    documents::delete(&org, project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
