//! Sharing a project: who has access, giving and taking it, restricting the project. Whoever
//! may change a project may share it (see `tessera_domain::access`).

use leptos::prelude::*;
use tessera_domain::dto::ProjectAccess;
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};
#[cfg(feature = "ssr")]
use tessera_backend::access::{self, GranteeRef};

#[server(endpoint = "get_project_access")]
pub async fn get_project_access(slug: String, id: String) -> Result<ProjectAccess, AppError> {
    ssr::once_per_request((slug.clone(), id.clone()), async move {
        let (_, org) = enter(&slug).await?;
        Ok(access::project_access(&org, ssr::parse_id(&id, "project")?).await?)
    })
    .await
}

/// Gives a member or group (`grantee`: `user:<id>` or `group:<id>`) a role on the project, or
/// changes the one they have.
#[server(endpoint = "share_project")]
pub async fn share_project(slug: String, id: String, grantee: String, project_role: String) -> Result<ProjectAccess, AppError> {
    let (_, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "project")?;
    let grantee = GranteeRef::parse(&grantee)?;
    let role = project_role.parse()?;
    Ok(access::grant(&org, id, grantee, role).await?)
}

/// Takes a grant away (which may be the caller's own way in: so it answers nothing).
#[server(endpoint = "unshare_project")]
pub async fn unshare_project(slug: String, id: String, grant: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "project")?;
    let grant = tessera_domain::input::parse_id(&grant, || AppError::NotFound("That access was already removed.".into()))?;
    Ok(access::revoke(&org, id, grant).await?)
}

/// `visibility`: `organization` (everyone in it) or `restricted` (only people given access).
#[server(endpoint = "set_project_visibility")]
pub async fn set_project_visibility(slug: String, id: String, visibility: String) -> Result<ProjectAccess, AppError> {
    let (_, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "project")?;
    Ok(access::set_visibility(&org, id, visibility.parse()?).await?)
}
