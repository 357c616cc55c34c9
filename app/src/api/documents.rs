//! Documents: the server functions of the documents slice. `project` is the id of the project
//! the document is in.

use leptos::prelude::*;
use tessera_domain::dto::{Document, DocumentList};
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};
#[cfg(feature = "ssr")]
use tessera_backend::documents::{self, DocumentChange, DocumentDraft};
#[cfg(feature = "ssr")]
use tessera_backend::projects;
#[cfg(feature = "ssr")]
use tessera_domain::input::parse_id;

/// The project's documents, and whether the caller may write one (the page's "New document").
#[server(endpoint = "list_documents")]
pub async fn list_documents(slug: String, project: String) -> Result<DocumentList, AppError> {
    ssr::once_per_request((slug.clone(), project.clone()), async move {
        let (_, org) = enter(&slug).await?;
        Ok(documents::list(&org, parse_id(&project, projects::no_such_project)?).await?)
    })
    .await
}

#[server(endpoint = "get_document")]
pub async fn get_document(slug: String, project: String, id: String) -> Result<Document, AppError> {
    ssr::once_per_request((slug.clone(), project.clone(), id.clone()), async move {
        let (_, org) = enter(&slug).await?;
        Ok(documents::get(&org, parse_id(&project, projects::no_such_project)?, parse_id(&id, documents::no_such_document)?).await?)
    })
    .await
}

/// Writes a new document; on to its page.
#[server(endpoint = "create_document")]
pub async fn create_document(slug: String, project: String, title: String, body: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let project = parse_id(&project, projects::no_such_project)?;
    let id = documents::create(&org, project, DocumentDraft::parse(&title, &body)?).await?.id;
    leptos_axum::redirect(&format!("/t/{}/projects/{project}/documents/{id}", org.tenant.slug));
    Ok(())
}

/// Saves a document's title and text; back to its page. `updated_at`: the version the form
/// was filled from (a change someone made since refuses this one).
#[server(endpoint = "update_document")]
pub async fn update_document(
    slug: String,
    project: String,
    id: String,
    title: String,
    body: String,
    updated_at: Option<String>,
) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let (project, id) = (parse_id(&project, projects::no_such_project)?, parse_id(&id, documents::no_such_document)?);
    documents::update(&org, project, id, DocumentChange::parse(Some(&title), Some(&body), updated_at.as_deref())?).await?;
    leptos_axum::redirect(&format!("/t/{}/projects/{project}/documents/{id}", org.tenant.slug));
    Ok(())
}

/// Deletes a document; back to its project.
#[server(endpoint = "delete_document")]
pub async fn delete_document(slug: String, project: String, id: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let project = parse_id(&project, projects::no_such_project)?;
    documents::delete(&org, project, parse_id(&id, documents::no_such_document)?).await?;
    leptos_axum::redirect(&format!("/t/{}/projects/{project}", org.tenant.slug));
    Ok(())
}
