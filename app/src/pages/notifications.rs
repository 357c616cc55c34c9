//! The signed-in person's notifications: newest first, marked read one by one or all at once,
//! and which kinds also send an email. Every action is a form, so it works before hydration.

use crate::api::{my_notifications, MarkNotificationsRead, SetNotificationEmail};
use crate::components::form::{last_error, FormAlert};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use leptos::prelude::*;
use tessera_domain::dto::{Notification, NotificationPreference};

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let mark = ServerAction::<MarkNotificationsRead>::new();
    let prefer = ServerAction::<SetNotificationEmail>::new();
    let inbox = Resource::new(move || (mark.version().get(), prefer.version().get()), |_| my_notifications());
    let error = Signal::derive(move || last_error(mark).get().or_else(|| last_error(prefer).get()));
    view! {
        <PageTitle text="Notifications" />
        <header class="page-header">
            <div>
                <h1>"Notifications"</h1>
                <p class="muted">"What happened in your organizations that concerns you."</p>
            </div>
            <ActionForm action=mark attr:class="inline-form">
                <button type="submit" class="btn btn-ghost" data-testid="mark-all-read">"Mark all as read"</button>
            </ActionForm>
        </header>
        <FormAlert error fields=&[] />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match inbox.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(inbox) => {
                        let list = if inbox.notifications.is_empty() {
                            view! { <p class="muted">"Nothing yet. You'll hear here when someone invites you or changes your role, joins or adds an API key to an organization you run, signs in to your account from a new device, or when a webhook endpoint of an organization you own is switched off."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="card-list" role="list">
                                    {inbox.notifications.into_iter().map(|n| view! { <NotificationRow notification=n action=mark /> }).collect_view()}
                                </ul>
                            }
                            .into_any()
                        };
                        view! {
                            {list}
                            <section class="card" aria-labelledby="email-heading">
                                <h2 id="email-heading">"Also by email"</h2>
                                <ul class="plain-list" role="list">
                                    {inbox.preferences.into_iter().map(|p| view! { <PreferenceRow preference=p action=prefer /> }).collect_view()}
                                </ul>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn NotificationRow(notification: Notification, action: ServerAction<MarkNotificationsRead>) -> impl IntoView {
    let class = if notification.read { "card notification" } else { "card notification unread" };
    let title = match notification.link.clone() {
        Some(link) => view! { <a href=link>{notification.title.clone()}</a> }.into_any(),
        None => view! { <span>{notification.title.clone()}</span> }.into_any(),
    };
    view! {
        <li class=class data-testid="notification">
            <div>
                <strong>{title}</strong>
                {(!notification.read).then(|| view! { <span class="badge">"New"</span> })}
                <p class="muted">{notification.body.clone()}</p>
                <p class="muted"><time datetime=notification.created_at.clone()>{notification.created_at.chars().take(16).collect::<String>().replace('T', " ")}</time></p>
            </div>
            {(!notification.read).then(|| view! {
                <ActionForm action attr:class="inline-form">
                    <input type="hidden" name="id" value=notification.id.to_string() />
                    <button type="submit" class="btn btn-ghost btn-sm">"Mark as read"</button>
                </ActionForm>
            })}
        </li>
    }
}

#[component]
fn PreferenceRow(preference: NotificationPreference, action: ServerAction<SetNotificationEmail>) -> impl IntoView {
    view! {
        <li>
            <ActionForm action attr:class="inline-form preference">
                <input type="hidden" name="kind" value=preference.kind.clone() />
                <label class="check">
                    <input type="checkbox" name="email" value="on" checked=preference.email />
                    " " {preference.label.clone()}
                </label>
                <button type="submit" class="btn btn-ghost btn-sm">"Save"</button>
            </ActionForm>
        </li>
    }
}
