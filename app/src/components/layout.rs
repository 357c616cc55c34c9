use crate::api::{my_session, LogOut};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;
use tessera_domain::dto::{OrgSummary, SessionSummary};

/// Changes on every navigation. Logging in or out, signing up and creating an organization all
/// end in one, so the header reloads who you are and where you belong exactly when it may change.
fn navigation() -> Memo<String> {
    let location = use_location();
    Memo::new(move |_| location.pathname.get())
}

#[component]
pub fn AppHeader() -> impl IntoView {
    let logout = ServerAction::<LogOut>::new();
    let nav = navigation();
    // One resource and one Transition: nested suspense in the header would make hydration fragile.
    let session = Resource::new(move || (nav.get(), logout.version().get()), |_| my_session());
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"◆"</span>
                " Tessera"
            </a>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match session.await {
                        Ok(Some(SessionSummary { user: me, orgs })) => {
                            // The header sits outside the routes, so it reads the organization from the path.
                            let current = nav
                                .get_untracked()
                                .strip_prefix("/t/")
                                .and_then(|rest| rest.split('/').next())
                                .map(str::to_string);
                            view! {
                                <nav class="topbar-nav" aria-label="Account">
                                    <OrgSwitcher orgs current />
                                    <a class="topbar-user" href="/account/security" data-testid="current-user" title="Your account">{me.label().to_string()}</a>
                                    <ActionForm action=logout attr:class="inline-form">
                                        <button type="submit" class="btn btn-ghost btn-sm">"Log out"</button>
                                    </ActionForm>
                                </nav>
                            }
                                .into_any()
                        }
                        _ => {
                            view! {
                                <nav class="topbar-nav" aria-label="Account">
                                    <A href="/login" attr:class="btn btn-ghost btn-sm">"Log in"</A>
                                    <A href="/signup" attr:class="btn btn-primary btn-sm">"Sign up"</A>
                                </nav>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
        </header>
    }
}

/// The tenant switcher: a disclosure listing every organization you belong to. A plain
/// `<details>` so it works before the WASM arrives.
#[component]
fn OrgSwitcher(orgs: Vec<OrgSummary>, current: Option<String>) -> impl IntoView {
    let label = current
        .as_ref()
        .and_then(|slug| orgs.iter().find(|o| &o.slug == slug))
        .map(|o| o.name.clone())
        .unwrap_or_else(|| "Organizations".to_string());
    view! {
        <details class="switcher" data-testid="org-switcher">
            <summary class="btn btn-ghost btn-sm">{label}</summary>
            <ul class="switcher-menu" role="list">
                {orgs
                    .into_iter()
                    .map(|org| {
                        let href = format!("/t/{}", org.slug);
                        let is_current = current.as_deref() == Some(org.slug.as_str());
                        view! {
                            <li>
                                <a href=href aria-current=is_current.then_some("page")>
                                    <span>{org.name}</span>
                                    <span class="badge">{org.role.label()}</span>
                                </a>
                            </li>
                        }
                    })
                    .collect_view()}
                <li class="switcher-new">
                    <a href="/orgs/new">"+ New organization"</a>
                </li>
            </ul>
        </details>
    }
}
