//! The signed-in person's own account: where they are signed in, and signing browsers out.

use crate::api::{my_sessions, SignOutOtherSessions, SignOutSession};
use crate::components::form::{last_error, FormAlert};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use leptos::prelude::*;
use tessera_domain::dto::DeviceSession;

/// "Firefox on Linux" from a user agent, good enough to recognise one's own devices.
fn device_name(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else { return "Unknown device".into() };
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/"]
        .iter()
        .find(|b| ua.contains(*b))
        .map(|b| match *b {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            _ => "Safari",
        })
        .unwrap_or("A browser or app");
    let system = ["Windows", "Mac OS", "Android", "iPhone", "Linux"].iter().find(|s| ua.contains(*s)).copied();
    match system {
        Some(system) => format!("{browser} on {}", if system == "Mac OS" { "macOS" } else { system }),
        None => browser.to_string(),
    }
}

#[component]
pub fn SessionsPage() -> impl IntoView {
    let sign_out = ServerAction::<SignOutSession>::new();
    let sign_out_others = ServerAction::<SignOutOtherSessions>::new();
    let sessions = Resource::new(move || (sign_out.version().get(), sign_out_others.version().get()), |_| my_sessions());
    let error = Signal::derive(move || last_error(sign_out).get().or_else(|| last_error(sign_out_others).get()));
    view! {
        <PageTitle text="Your sessions" />
        <header class="page-header">
            <div>
                <h1>"Your sessions"</h1>
                <p class="muted">"Browsers where you are signed in. Sign out any you don't recognise, then change your password."</p>
            </div>
            <ActionForm action=sign_out_others attr:class="inline-form">
                <button type="submit" class="btn btn-ghost">"Sign out all other sessions"</button>
            </ActionForm>
        </header>
        <crate::pages::security::AccountNav />
        <FormAlert error fields=&[] />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match sessions.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(list) => view! {
                        <ul class="card-list" role="list">
                            {list.into_iter().map(|s| view! { <SessionRow session=s action=sign_out /> }).collect_view()}
                        </ul>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SessionRow(session: DeviceSession, action: ServerAction<SignOutSession>) -> impl IntoView {
    let name = device_name(session.user_agent.as_deref());
    view! {
        <li class="card session-row" data-testid="session-row">
            <div>
                <strong>{name}</strong>
                {session.current.then(|| view! { <span class="badge">"This browser"</span> })}
                <p class="muted">
                    {session.ip.clone().map(|ip| format!("From {ip} · ")).unwrap_or_default()}
                    "Signed in " <time datetime=session.signed_in_at.clone().unwrap_or_default()>{session.signed_in_at.clone().unwrap_or_else(|| "earlier".into())}</time>
                    " · last active " <time datetime=session.last_active_at.clone()>{session.last_active_at.clone()}</time>
                </p>
            </div>
            {(!session.current).then(|| view! {
                <ActionForm action attr:class="inline-form">
                    <input type="hidden" name="handle" value=session.handle.clone() />
                    <button type="submit" class="btn btn-ghost btn-sm">"Sign out"</button>
                </ActionForm>
            })}
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::device_name;

    #[test]
    fn devices_get_names_people_recognise() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(device_name(Some(chrome)), "Chrome on Linux");
        assert_eq!(device_name(Some("Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0")), "Firefox on Windows");
        assert_eq!(device_name(Some("curl/8.0")), "A browser or app");
        assert_eq!(device_name(None), "Unknown device");
    }
}
