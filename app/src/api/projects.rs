//! Projects: the server functions of the projects slice (pages call them; so do the tests).

use leptos::prelude::*;
use tessera_domain::dto::ProjectSummary;
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};
#[cfg(feature = "ssr")]
use tessera_backend::projects::{self, ProjectChange, ProjectDraft};

#[server(endpoint = "list_projects")]
pub async fn list_projects(slug: String) -> Result<Vec<ProjectSummary>, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(projects::list(&org).await?)
    })
    .await
}

#[server(endpoint = "get_project")]
pub async fn get_project(slug: String, id: String) -> Result<ProjectSummary, AppError> {
    ssr::once_per_request((slug.clone(), id.clone()), async move {
        let (_, org) = enter(&slug).await?;
        Ok(projects::get(&org, ssr::parse_id(&id, "project")?).await?)
    })
    .await
}

/// `visibility`: `organization` (the default) or `restricted` (only people given access).
#[server(endpoint = "create_project")]
pub async fn create_project(slug: String, name: String, description: String, visibility: Option<String>) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let draft = ProjectDraft::parse(&name, &description)?.visible_to(visibility.as_deref())?;
    let id = projects::create(&org, draft).await?.id;
    leptos_axum::redirect(&format!("/t/{}/projects/{id}", org.tenant.slug));
    Ok(())
}

/// Saves a project's name and description; back to the project's page. `updated_at`: the
/// version the form was filled from (a change someone made since refuses this one).
#[server(endpoint = "update_project")]
pub async fn update_project(slug: String, id: String, name: String, description: String, updated_at: Option<String>) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "project")?;
    projects::update(&org, id, ProjectChange::parse(Some(&name), Some(&description), updated_at.as_deref())?).await?;
    leptos_axum::redirect(&format!("/t/{}/projects/{id}", org.tenant.slug));
    Ok(())
}

/// Deletes a project and its documents; back to the list.
#[server(endpoint = "delete_project")]
pub async fn delete_project(slug: String, id: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    projects::delete(&org, ssr::parse_id(&id, "project")?).await?;
    leptos_axum::redirect(&format!("/t/{}/projects", org.tenant.slug));
    Ok(())
}
