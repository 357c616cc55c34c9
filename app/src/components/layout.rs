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
                        Ok(Some(SessionSummary { user: me, orgs, unread_notifications })) => {
                            // The header sits outside the routes, so it reads the organization from the path.
                            let current = nav
                                .get_untracked()
                                .strip_prefix("/t/")
                                .and_then(|rest| rest.split('/').next())
                                .map(str::to_string);
                            view! {
                                <nav class="topbar-nav" aria-label="Account">
                                    <OrgSwitcher orgs current />
                                    <NotificationBell unread=unread_notifications />
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

/// The bell: a link to the notifications page with the unread count, rendered on the server
/// and kept current after hydration by the live stream (`/api/notifications/stream`).
#[component]
fn NotificationBell(unread: i64) -> impl IntoView {
    let unread = RwSignal::new(unread);
    #[cfg(feature = "hydrate")]
    live_count(unread);
    let label = move || match unread.get() {
        0 => "Notifications".to_string(),
        1 => "Notifications, 1 unread".to_string(),
        n if n >= 100 => "Notifications, 99+ unread".to_string(),
        n => format!("Notifications, {n} unread"),
    };
    let badge = move || match unread.get() {
        0 => None,
        n if n >= 100 => Some("99+".to_string()),
        n => Some(n.to_string()),
    };
    view! {
        <a class="bell btn btn-ghost btn-sm" href="/notifications" data-testid="notifications" aria-label=label title=label>
            <span aria-hidden="true">"🔔"</span>
            {move || badge().map(|count| view! { <span class="bell-count" data-testid="unread-count">{count}</span> })}
        </a>
    }
}

/// Opens the live count for as long as the bell is shown (the header renders it afresh on
/// every navigation, and the browser reconnects by itself after a server restart).
#[cfg(feature = "hydrate")]
fn live_count(unread: RwSignal<i64>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Ok(source) = web_sys::EventSource::new("/api/notifications/stream") else { return };
    let on_count = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
        if let Some(count) = event.data().as_string().and_then(|text| text.trim().parse().ok()) {
            unread.set(count);
        }
    });
    let _ = source.add_event_listener_with_callback("unread", on_count.as_ref().unchecked_ref());
    let source = send_wrapper::SendWrapper::new((source, on_count));
    on_cleanup(move || source.0.close());
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
                        let role = org.role_label().to_string();
                        view! {
                            <li>
                                <a href=href aria-current=is_current.then_some("page")>
                                    <span>{org.name}</span>
                                    <span class="badge">{role}</span>
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
