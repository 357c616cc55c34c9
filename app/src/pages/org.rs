//! The frame around every page of an organization: it resolves the organization (404 when you
//! are not a member), shares it with the pages inside, and shows the navigation your role allows.

use crate::api::{load_org, load_org_overview};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use leptos::prelude::*;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::use_params_map;
use tessera_domain::dto::OrgContext;
use tessera_domain::{AppError, Permission};

/// The current organization, loaded once by the layout and read by the pages inside it.
#[derive(Clone, Copy)]
pub struct CurrentOrg(pub Resource<Result<OrgContext, AppError>>);

pub fn use_slug() -> Memo<String> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("slug").unwrap_or_default())
}

#[component]
pub fn OrgLayout() -> impl IntoView {
    let slug = use_slug();
    let org = Resource::new(move || slug.get(), load_org);
    provide_context(CurrentOrg(org));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match org.await {
                    Ok(org) => {
                        let base = format!("/t/{}", org.slug);
                        view! {
                            <div class="org-shell">
                                <nav class="org-nav" aria-label="Organization">
                                    <p class="org-name">{org.name.clone()}</p>
                                    <A href=base.clone() exact=true>"Overview"</A>
                                    <A href=format!("{base}/projects")>"Projects"</A>
                                    <A href=format!("{base}/members")>"Members"</A>
                                    <A href=format!("{base}/groups")>"Groups"</A>
                                    {(org.rights.can(Permission::ManageMembers) || org.rights.can(Permission::ManageRoles)).then(|| view! {
                                        <A href=format!("{base}/settings/roles")>"Roles"</A>
                                    })}
                                    {org.rights.can(Permission::ManageSecurity).then(|| view! {
                                        <A href=format!("{base}/sso")>"Single sign-on"</A>
                                    })}
                                    {org.rights.can(Permission::ManageApiKeys).then(|| view! {
                                        <A href=format!("{base}/api-keys")>"API keys"</A>
                                    })}
                                    {org.rights.can(Permission::ManageWebhooks).then(|| view! {
                                        <A href=format!("{base}/settings/webhooks")>"Webhooks"</A>
                                    })}
                                    {org.rights.can(Permission::ManageBilling).then(|| view! {
                                        <A href=format!("{base}/settings/billing")>"Billing"</A>
                                    })}
                                    {org.rights.can(Permission::ViewAudit).then(|| view! {
                                        <A href=format!("{base}/settings/audit")>"Audit log"</A>
                                    })}
                                    {org.rights.can(Permission::ViewSettings).then(|| view! {
                                        <A href=format!("{base}/settings")>"Settings"</A>
                                    })}
                                </nav>
                                <div class="org-content">
                                    {org.billing_alert.clone().map(|alert| view! {
                                        <div class="alert alert-warning billing-banner" role="alert" data-testid="billing-banner">
                                            <span>{alert}</span>
                                            {org.rights.can(Permission::ManageBilling).then(|| view! {
                                                " " <a class="btn btn-primary" href=format!("{base}/settings/billing")>"Fix payment"</a>
                                            })}
                                        </div>
                                    })}
                                    <Outlet />
                                </div>
                            </div>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let CurrentOrg(org) = expect_context::<CurrentOrg>();
    let slug = use_slug();
    let overview = Resource::new(move || slug.get(), load_org_overview);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let overview = overview.await.ok();
                org.await
                    .ok()
                    .map(|org| {
                        let base = format!("/t/{}", org.slug);
                        view! {
                            <PageTitle text=org.name.clone() />
                            <header class="page-header">
                                <div>
                                    <h1>{org.name.clone()}</h1>
                                    <p class="muted">"You are " <span class="badge" data-testid="my-role">{org.rights.label()}</span></p>
                                </div>
                                {org.rights.can(Permission::WriteProjects).then(|| view! {
                                    <a class="btn btn-primary" href=format!("{base}/projects/new")>"New project"</a>
                                })}
                            </header>
                            <div class="stats">
                                <a class="card stat" href=format!("{base}/projects")>
                                    <span class="stat-value">{overview.as_ref().map(|o| o.project_count.to_string()).unwrap_or_else(|| "–".into())}</span>
                                    <span class="stat-label">"Projects"</span>
                                </a>
                                <a class="card stat" href=format!("{base}/members")>
                                    <span class="stat-value">{overview.as_ref().map(|o| o.member_count.to_string()).unwrap_or_else(|| "–".into())}</span>
                                    <span class="stat-label">"Members"</span>
                                </a>
                            </div>
                        }
                    })
            })}
        </Suspense>
    }
}
