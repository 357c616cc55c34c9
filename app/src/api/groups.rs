//! Groups of members, which projects can be shared with.

use leptos::prelude::*;
use tessera_domain::dto::Group;
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};
#[cfg(feature = "ssr")]
use tessera_backend::access::groups::{self, GroupDraft};

#[server(endpoint = "list_groups")]
pub async fn list_groups(slug: String) -> Result<Vec<Group>, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(groups::list(&org).await?)
    })
    .await
}

/// `idp_group`: the identity provider's group it mirrors (blank: none; members by hand).
#[server(endpoint = "create_group")]
pub async fn create_group(slug: String, name: String, description: String, idp_group: String) -> Result<Group, AppError> {
    let (_, org) = enter(&slug).await?;
    Ok(groups::create(&org, GroupDraft::parse(&name, &description, &idp_group)?).await?)
}

#[server(endpoint = "update_group")]
pub async fn update_group(slug: String, group: String, name: String, description: String, idp_group: String) -> Result<Group, AppError> {
    let (_, org) = enter(&slug).await?;
    let group = group_id(&group)?;
    Ok(groups::update(&org, group, GroupDraft::parse(&name, &description, &idp_group)?).await?)
}

#[server(endpoint = "delete_group")]
pub async fn delete_group(slug: String, group: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    Ok(groups::delete(&org, group_id(&group)?).await?)
}

#[server(endpoint = "add_group_member")]
pub async fn add_group_member(slug: String, group: String, user_id: String) -> Result<Group, AppError> {
    let (_, org) = enter(&slug).await?;
    let user_id = ssr::parse_id(&user_id, "member")?;
    Ok(groups::add_member(&org, group_id(&group)?, user_id).await?)
}

#[server(endpoint = "remove_group_member")]
pub async fn remove_group_member(slug: String, group: String, user_id: String) -> Result<Group, AppError> {
    let (_, org) = enter(&slug).await?;
    let user_id = ssr::parse_id(&user_id, "member")?;
    Ok(groups::remove_member(&org, group_id(&group)?, user_id).await?)
}

#[cfg(feature = "ssr")]
fn group_id(raw: &str) -> Result<uuid::Uuid, AppError> {
    tessera_domain::input::parse_id(raw, groups::no_such_group)
}
