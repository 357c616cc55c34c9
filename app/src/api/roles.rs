//! Roles: the built-in ones and the organization's own (custom roles).

use leptos::prelude::*;
use tessera_domain::dto::RolesOverview;
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::enter;
#[cfg(feature = "ssr")]
use tessera_backend::members::roles::{self, RoleDraft};

#[server(endpoint = "list_roles")]
pub async fn list_roles(slug: String) -> Result<RolesOverview, AppError> {
    super::ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(roles::list(&org).await?)
    })
    .await
}

/// `permissions`: the ticked checkboxes, each a permission's name (`ViewAudit`).
#[server(endpoint = "create_role")]
pub async fn create_role(slug: String, name: String, description: String, permissions: Option<Vec<String>>) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    roles::create(&org, RoleDraft::parse(&name, &description, &permissions.unwrap_or_default())?).await?;
    Ok(())
}

#[server(endpoint = "update_role")]
pub async fn update_role(slug: String, role: String, name: String, description: String, permissions: Option<Vec<String>>) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let id = role_id(&role)?;
    Ok(roles::update(&org, id, RoleDraft::parse(&name, &description, &permissions.unwrap_or_default())?).await?)
}

#[server(endpoint = "delete_role")]
pub async fn delete_role(slug: String, role: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    Ok(roles::delete(&org, role_id(&role)?).await?)
}

#[cfg(feature = "ssr")]
fn role_id(raw: &str) -> Result<uuid::Uuid, AppError> {
    tessera_domain::input::parse_id(raw.trim_start_matches("custom:"), roles::no_such_role)
}
