//! Outgoing webhooks (Owners and Admins): endpoints with their signing secrets, each endpoint's
//! delivery log (resend, replay, test), and the catalogue of events with example payloads.

use crate::api::{
    get_webhook, get_webhook_delivery, list_webhook_deliveries, list_webhooks, CreateWebhook, DeleteWebhook, ReplayWebhookFailures,
    ResendWebhookDelivery, RotateWebhookSecret, SendWebhookTest, UpdateWebhook,
};
use crate::components::form::{last_error, ConfirmDelete, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::components::reauth::{wants_reauth, ReauthPrompt, ReauthWhenAsked};
use crate::pages::not_found::ErrorPage;
use crate::pages::org::use_slug;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use tessera_domain::dto::{NewWebhookSecret, WebhookDelivery, WebhookEndpoint};
use tessera_domain::webhooks::{EventType, WebhookDescription, ROTATION_OVERLAP_HOURS};
use tessera_domain::AppError;

fn check_description(s: &str) -> Option<String> {
    WebhookDescription::parse(s).err().map(|e| e.message)
}

/// Where the webhooks pages live.
fn base(slug: &str) -> String {
    format!("/t/{slug}/settings/webhooks")
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let slug = use_slug();
    let create = ServerAction::<CreateWebhook>::new();
    let endpoints = Resource::new(move || (slug.get(), create.version().get()), |(slug, _)| list_webhooks(slug));
    let error = last_error(create);
    let new_secret = move || create.value().get().and_then(Result::ok);
    view! {
        <PageTitle text="Webhooks" />
        <header class="page-header">
            <div>
                <h1>"Webhooks"</h1>
                <p class="muted">
                    "Send this organization's events to your own systems as they happen: signed HTTPS requests, retried for a day when your endpoint is down."
                </p>
            </div>
            <a class="btn" href=move || format!("{}/events", base(&slug.get()))>"Event catalogue"</a>
        </header>
        {move || new_secret().map(|created| view! { <SecretCard created slug=slug.get_untracked() /> })}
        <Suspense fallback=|| view! { <p class="loading">"Loading endpoints…"</p> }>
            {move || Suspend::new(async move {
                match endpoints.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(page) => {
                        let full = page.endpoints.len() as i64 >= page.max_endpoints;
                        let allow_http = page.allow_http;
                        view! {
                            <EndpointList endpoints=page.endpoints slug=slug.get_untracked() />
                            <section class="card form-card" aria-labelledby="add-endpoint">
                                <h2 id="add-endpoint">"Add an endpoint"</h2>
                                {full.then(|| view! {
                                    <p class="alert alert-info">{format!("This organization has the most endpoints it can have ({}). Remove one to add another.", page.max_endpoints)}</p>
                                })}
                                <ActionForm action=create attr:class="form" attr:novalidate=true>
                                    <FormAlert error fields=&["url", "description", "event_types"] />
                                    <input type="hidden" name="slug" value=move || slug.get() />
                                    <EndpointFields error allow_http endpoint=None />
                                    <Submit label="Add endpoint" busy_label="Adding…" pending=create.pending() />
                                </ActionForm>
                                <ReauthWhenAsked error=error again="Add endpoint" />
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
fn EndpointList(endpoints: Vec<WebhookEndpoint>, slug: String) -> impl IntoView {
    if endpoints.is_empty() {
        return view! {
            <div class="empty-state card">
                <h2>"No endpoints yet"</h2>
                <p>"Add the URL of a service that should hear about new projects, members joining and more. Each request is signed so it can check that it came from here."</p>
            </div>
        }
        .into_any();
    }
    view! {
        <table class="table" data-testid="webhook-endpoints">
            <thead>
                <tr>
                    <th scope="col">"Endpoint"</th>
                    <th scope="col">"Events"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Last 24 hours"</th>
                </tr>
            </thead>
            <tbody>
                {endpoints
                    .into_iter()
                    .map(|e| {
                        let href = format!("{}/{}", base(&slug), e.id);
                        view! {
                            <tr data-testid="webhook-endpoint-row">
                                <td>
                                    <a href=href><code>{e.url.clone()}</code></a>
                                    {(!e.description.is_empty()).then(|| view! { <div class="muted">{e.description.clone()}</div> })}
                                </td>
                                <td>{e.event_types.join(", ")}</td>
                                <td><StatusBadge endpoint=e.clone() /></td>
                                <td>{format!("{} delivered, {} failed", e.delivered_24h, e.failed_24h)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn StatusBadge(endpoint: WebhookEndpoint) -> impl IntoView {
    let (class, label) = match (endpoint.enabled, endpoint.failing_since.is_some()) {
        (false, _) => ("badge badge-muted", "Off"),
        (true, true) => ("badge badge-warning", "Failing"),
        (true, false) => ("badge badge-success", "On"),
    };
    view! { <span class=class data-testid="webhook-status">{label}</span> }
}

/// The one time a signing secret is shown.
#[component]
fn SecretCard(created: NewWebhookSecret, slug: String) -> impl IntoView {
    let href = format!("{}/{}", base(&slug), created.endpoint_id);
    view! {
        <section class="card recovery-codes" data-testid="new-webhook-secret">
            <h2>"Copy the signing secret now"</h2>
            <p>"This is the only time it is shown. Your endpoint uses it to check that each request came from us (any Standard Webhooks library does this)."</p>
            <p><code class="secret" data-testid="webhook-secret">{created.secret.clone()}</code></p>
            {created.previous_secret_until.map(|until| view! {
                <p class="muted">"The previous secret keeps signing too until " <time datetime=until.clone()>{crate::date_time_of(&until)}</time> ": switch your endpoint to the new one before then."</p>
            })}
            <p><a href=href>"Go to the endpoint"</a></p>
        </section>
    }
}

/// URL, description, event types and the on switch, filled from `endpoint` when editing.
#[component]
fn EndpointFields(error: Signal<Option<AppError>>, allow_http: bool, endpoint: Option<WebhookEndpoint>) -> impl IntoView {
    let url = RwSignal::new(endpoint.as_ref().map(|e| e.url.clone()).unwrap_or_default());
    let description = RwSignal::new(endpoint.as_ref().map(|e| e.description.clone()).unwrap_or_default());
    let chosen: Vec<String> = endpoint.as_ref().map(|e| e.event_types.clone()).unwrap_or_default();
    let enabled = endpoint.as_ref().is_none_or(|e| e.enabled);
    let check_url: fn(&str) -> Option<String> = if allow_http {
        |s| tessera_domain::webhooks::WebhookUrl::parse(s, true).err().map(|e| e.message)
    } else {
        |s| tessera_domain::webhooks::WebhookUrl::parse(s, false).err().map(|e| e.message)
    };
    let types_error = move || error.get().filter(|e| e.field() == Some("event_types")).map(|e| e.to_string());
    view! {
        <Field label="Endpoint URL" name="url" required=true error check=check_url value=url hint="An https:// address on the public internet, e.g. https://example.com/webhooks/tessera." />
        <Field label="Description" name="description" error check=check_description value=description hint="Optional. What receives these events, e.g. \"CRM sync\"." />
        <fieldset class="field" aria-describedby="event-types-error">
            <legend>"Events to send"</legend>
            {EventType::subscribable()
                .map(|t| {
                    let checked = chosen.iter().any(|c| c == t.as_str());
                    view! {
                        <label class="check">
                            <input type="checkbox" name="event_types[]" value=t.as_str() checked=checked />
                            " " <code>{t.as_str()}</code> " " <span class="muted">{t.description()}</span>
                        </label>
                    }
                })
                .collect_view()}
            <p class="field-error" id="event-types-error" role="alert">{types_error}</p>
        </fieldset>
        <label class="check">
            <input type="checkbox" name="enabled" value="on" checked=enabled />
            " Send events to this endpoint (switch off to pause without losing its settings)"
        </label>
    }
}

#[component]
pub fn WebhookPage() -> impl IntoView {
    let slug = use_slug();
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let update = ServerAction::<UpdateWebhook>::new();
    let rotate = ServerAction::<RotateWebhookSecret>::new();
    let test = ServerAction::<SendWebhookTest>::new();
    let replay = ServerAction::<ReplayWebhookFailures>::new();
    let endpoint =
        Resource::new(move || (slug.get(), id(), update.version().get(), rotate.version().get()), |(slug, id, _, _)| get_webhook(slug, id));
    let settings = Resource::new(move || slug.get(), list_webhooks);
    let deliveries = Resource::new(
        move || {
            let q = query.read();
            (slug.get(), id(), q.get("status"), q.get("before"), test.version().get(), replay.version().get())
        },
        |(slug, id, status, before, _, _)| list_webhook_deliveries(slug, id, status, before),
    );
    let update_error = last_error(update);
    let rotate_error = last_error(rotate);
    let test_error = last_error(test);
    let replay_error = last_error(replay);
    let reauthenticated = RwSignal::new(false);
    let wants = move || wants_reauth(update_error.get()) || wants_reauth(rotate_error.get());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading endpoint…"</p> }>
            {move || Suspend::new(async move {
                let allow_http = settings.await.map(|s| s.allow_http).unwrap_or(false);
                match endpoint.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(e) => {
                        let slug_now = slug.get_untracked();
                        let id_now = e.id.to_string();
                        view! {
                            <PageTitle text="Webhook endpoint" />
                            <nav class="breadcrumbs" aria-label="Breadcrumb">
                                <a href=base(&slug_now)>"Webhooks"</a>
                                " / "
                            </nav>
                            <header class="page-header">
                                <div>
                                    <h1 class="break-anywhere"><code data-testid="webhook-url">{e.url.clone()}</code></h1>
                                    <p class="muted">{e.description.clone()}</p>
                                </div>
                                <StatusBadge endpoint=e.clone() />
                            </header>
                            {e.disabled_reason.clone().map(|why| view! {
                                <p class="alert alert-error" role="alert" data-testid="webhook-disabled">
                                    {why} " Fix the endpoint, switch it back on below, then replay the failed deliveries."
                                </p>
                            })}
                            {e.failing_since.clone().filter(|_| e.enabled).map(|since| view! {
                                <p class="alert alert-info">
                                    "Deliveries have been failing since " <time datetime=since.clone()>{crate::date_time_of(&since)}</time>
                                    ". If this goes on, the endpoint is switched off and the organization's Owners are told."
                                </p>
                            })}
                            {move || rotate.value().get().and_then(Result::ok).map(|created| view! { <SecretCard created slug=slug.get_untracked() /> })}
                            <EndpointActions slug=slug_now.clone() id=id_now.clone() previous_secret_until=e.previous_secret_until.clone() rotate test rotate_error test_error />
                            <Show when=move || wants() && !reauthenticated.get()>
                                <ReauthPrompt on_done=move |_| reauthenticated.set(true) />
                            </Show>
                            <Show when=move || reauthenticated.get() && wants()>
                                <p class="alert alert-info" role="status">"Thanks, confirmed. Press the button again."</p>
                            </Show>
                            <DeliveryLog slug=slug_now.clone() id=id_now.clone() deliveries replay replay_error />
                            <EndpointSettings slug=slug_now.clone() id=id_now.clone() endpoint=e.clone() allow_http update update_error />
                            <DeleteEndpoint slug=slug_now id=id_now url=e.url />
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn EndpointActions(
    slug: String,
    id: String,
    previous_secret_until: Option<String>,
    rotate: ServerAction<RotateWebhookSecret>,
    test: ServerAction<SendWebhookTest>,
    rotate_error: Signal<Option<AppError>>,
    test_error: Signal<Option<AppError>>,
) -> impl IntoView {
    let (slug2, id2) = (slug.clone(), id.clone());
    view! {
        <section class="card" aria-labelledby="endpoint-actions">
            <h2 id="endpoint-actions">"Signing and testing"</h2>
            <p class="muted">
                "Each request carries " <code>"webhook-id"</code> ", " <code>"webhook-timestamp"</code> " and " <code>"webhook-signature"</code>
                " headers (the Standard Webhooks scheme). "
                {previous_secret_until.map(|until| format!("Both the new and the previous secret sign until {}.", crate::date_time_of(&until)))}
            </p>
            <FormAlert error=rotate_error fields=&[] />
            <FormAlert error=test_error fields=&[] />
            <div class="item-actions">
                <ActionForm action=test attr:class="inline-form">
                    <input type="hidden" name="slug" value=slug />
                    <input type="hidden" name="id" value=id />
                    <Submit label="Send test event" busy_label="Sending…" pending=test.pending() />
                </ActionForm>
                <ActionForm action=rotate attr:class="inline-form">
                    <input type="hidden" name="slug" value=slug2 />
                    <input type="hidden" name="id" value=id2 />
                    <button type="submit" class="btn" disabled=move || rotate.pending().get()>"Rotate secret"</button>
                </ActionForm>
            </div>
            <p class="muted">{format!("Rotating makes a new secret; the current one keeps signing for {ROTATION_OVERLAP_HOURS} hours, so nothing is dropped while you switch.")}</p>
            <Show when=move || test.value().get().is_some_and(|r| r.is_ok())>
                <p class="alert alert-info" role="status">"Test event queued: it appears in the deliveries below within a few seconds."</p>
            </Show>
        </section>
    }
}

#[component]
fn EndpointSettings(
    slug: String,
    id: String,
    endpoint: WebhookEndpoint,
    allow_http: bool,
    update: ServerAction<UpdateWebhook>,
    update_error: Signal<Option<AppError>>,
) -> impl IntoView {
    view! {
        <section class="card form-card" aria-labelledby="edit-endpoint">
            <h2 id="edit-endpoint">"Settings"</h2>
            <ActionForm action=update attr:class="form" attr:novalidate=true>
                <FormAlert error=update_error fields=&["url", "description", "event_types"] />
                <input type="hidden" name="slug" value=slug />
                <input type="hidden" name="id" value=id />
                <EndpointFields error=update_error allow_http endpoint=Some(endpoint) />
                <Submit label="Save changes" busy_label="Saving…" pending=update.pending() />
            </ActionForm>
            <Show when=move || update.value().get().is_some_and(|r| r.is_ok())>
                <p class="alert alert-info" role="status">"Saved."</p>
            </Show>
        </section>
    }
}

#[component]
fn DeliveryLog(
    slug: String,
    id: String,
    deliveries: Resource<Result<Vec<WebhookDelivery>, AppError>>,
    replay: ServerAction<ReplayWebhookFailures>,
    replay_error: Signal<Option<AppError>>,
) -> impl IntoView {
    let query = use_query_map();
    let here = format!("{}/{id}", base(&slug));
    let filters = [("", "All"), ("failed", "Failed"), ("pending", "Pending"), ("delivered", "Delivered")];
    let current = move || query.read().get("status").unwrap_or_default();
    let replayed = move || replay.value().get().and_then(Result::ok);
    view! {
        <section class="card" aria-labelledby="deliveries">
            <h2 id="deliveries">"Deliveries"</h2>
            <nav class="tabs" aria-label="Filter deliveries">
                {filters
                    .into_iter()
                    .map(|(status, label)| {
                        let href = if status.is_empty() { here.clone() } else { format!("{here}?status={status}") };
                        view! { <a href=href aria-current=move || (current() == status).then_some("page")>{label}</a> }
                    })
                    .collect_view()}
            </nav>
            <Suspense fallback=|| view! { <p class="loading">"Loading deliveries…"</p> }>
                {
                    let here = here.clone();
                    move || {
                        let here = here.clone();
                        Suspend::new(async move {
                            match deliveries.await {
                                Err(error) => view! { <ErrorPage error /> }.into_any(),
                                Ok(list) if list.is_empty() => view! { <p class="muted">"No deliveries here yet. Events this endpoint subscribes to show up as they happen; kept for 30 days."</p> }.into_any(),
                                Ok(list) => {
                                    let older = (list.len() as i64 >= tessera_domain::webhooks::DELIVERIES_PER_PAGE).then(|| list.last().map(|d| d.id)).flatten();
                                    let status = current();
                                    view! {
                                        <table class="table" data-testid="webhook-deliveries">
                                            <thead>
                                                <tr>
                                                    <th scope="col">"Event"</th>
                                                    <th scope="col">"Status"</th>
                                                    <th scope="col">"Attempts"</th>
                                                    <th scope="col">"Last result"</th>
                                                    <th scope="col">"Created"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {list.into_iter().map(|d| view! { <DeliveryRow delivery=d here=here.clone() /> }).collect_view()}
                                            </tbody>
                                        </table>
                                        {older.map(|last| {
                                            let filter = if status.is_empty() { String::new() } else { format!("status={status}&") };
                                            view! { <p><a href=format!("{here}?{filter}before={last}")>"Older deliveries"</a></p> }
                                        })}
                                    }
                                    .into_any()
                                }
                            }
                        })
                    }
                }
            </Suspense>
            <details class="replay">
                <summary>"Replay failed deliveries…"</summary>
                <ActionForm action=replay attr:class="form" attr:novalidate=true>
                    <FormAlert error=replay_error fields=&["since"] />
                    <input type="hidden" name="slug" value=slug.clone() />
                    <input type="hidden" name="id" value=id.clone() />
                    <div class="field">
                        <label for="replay-since">"Failed since (UTC)"</label>
                        <input id="replay-since" name="since" type="datetime-local" required=true />
                        <p class="field-error" role="alert">{move || replay_error.get().filter(|e| e.field() == Some("since")).map(|e| e.to_string())}</p>
                    </div>
                    <Submit label="Replay" busy_label="Replaying…" pending=replay.pending() />
                </ActionForm>
                {move || replayed().map(|n| view! { <p class="alert alert-info" role="status" data-testid="replayed">{format!("{n} failed deliveries are being sent again.")}</p> })}
            </details>
        </section>
    }
}

#[component]
fn DeliveryRow(delivery: WebhookDelivery, here: String) -> impl IntoView {
    let result = match (&delivery.last_response_status, &delivery.last_error) {
        (_, Some(error)) => error.clone(),
        (Some(status), None) => format!("HTTP {status}"),
        (None, None) => "—".into(),
    };
    let badge = match delivery.status.as_str() {
        "delivered" => "badge badge-success",
        "failed" => "badge badge-danger",
        _ => "badge badge-muted",
    };
    let next = delivery.next_attempt_at.clone().filter(|_| delivery.status == "pending");
    view! {
        <tr data-testid="webhook-delivery-row">
            <td>
                <a href=format!("{here}/deliveries/{}", delivery.id)><code>{delivery.event_type.clone()}</code></a>
                <div class="muted"><code>{delivery.event_id.to_string()}</code></div>
            </td>
            <td>
                <span class=badge data-testid="delivery-status">{delivery.status.clone()}</span>
                {next.map(|at| view! { <div class="muted">"Next try " {crate::date_time_of(&at)}</div> })}
            </td>
            <td>{delivery.attempts}</td>
            <td class="break-anywhere">{result}</td>
            <td><time datetime=delivery.created_at.clone()>{crate::date_time_of(&delivery.created_at)}</time></td>
        </tr>
    }
}

#[component]
fn DeleteEndpoint(slug: String, id: String, url: String) -> impl IntoView {
    let delete = ServerAction::<DeleteWebhook>::new();
    let error = last_error(delete);
    view! {
        <section class="card danger-zone" aria-labelledby="remove-endpoint">
            <h2 id="remove-endpoint">"Remove endpoint"</h2>
            <ConfirmDelete summary="Remove…" open=Signal::derive(move || error.get().is_some())>
                <ActionForm action=delete attr:class="form">
                    <FormAlert error fields=&[] />
                    <p>"Stop sending events to " <code>{url}</code> " and forget its delivery log? Deliveries under way stop. This can't be undone."</p>
                    <input type="hidden" name="slug" value=slug />
                    <input type="hidden" name="id" value=id />
                    <Submit label="Remove endpoint" busy_label="Removing…" pending=delete.pending() danger=true />
                </ActionForm>
            </ConfirmDelete>
        </section>
    }
}

#[component]
pub fn WebhookDeliveryPage() -> impl IntoView {
    let slug = use_slug();
    let params = use_params_map();
    let resend = ServerAction::<ResendWebhookDelivery>::new();
    let detail = Resource::new(
        move || {
            let p = params.read();
            (slug.get(), p.get("id").unwrap_or_default(), p.get("delivery").unwrap_or_default(), resend.version().get())
        },
        |(slug, id, delivery, _)| get_webhook_delivery(slug, id, delivery),
    );
    let error = last_error(resend);
    view! {
        <PageTitle text="Webhook delivery" />
        <Suspense fallback=|| view! { <p class="loading">"Loading delivery…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(detail) => {
                        let slug_now = slug.get_untracked();
                        let endpoint = params.read_untracked().get("id").unwrap_or_default();
                        let d = detail.delivery.clone();
                        let finished = matches!(d.status.as_str(), "delivered" | "failed");
                        view! {
                            <nav class="breadcrumbs" aria-label="Breadcrumb">
                                <a href=base(&slug_now)>"Webhooks"</a>
                                " / "
                                <a href=format!("{}/{endpoint}", base(&slug_now))>"Endpoint"</a>
                                " / "
                            </nav>
                            <header class="page-header">
                                <div>
                                    <h1><code>{d.event_type.clone()}</code></h1>
                                    <p class="muted">"Event " <code>{d.event_id.to_string()}</code> " · " {crate::date_time_of(&d.created_at)}</p>
                                </div>
                                <span class="badge" data-testid="delivery-status">{d.status.clone()}</span>
                            </header>
                            <FormAlert error fields=&[] />
                            {finished.then(|| view! {
                                <ActionForm action=resend attr:class="inline-form">
                                    <input type="hidden" name="slug" value=slug_now.clone() />
                                    <input type="hidden" name="id" value=endpoint.clone() />
                                    <input type="hidden" name="delivery" value=d.id.to_string() />
                                    <Submit label="Resend" busy_label="Resending…" pending=resend.pending() />
                                </ActionForm>
                            })}
                            <section class="card">
                                <h2>"Payload"</h2>
                                <pre class="code-block" data-testid="delivery-payload">{pretty(&detail.payload)}</pre>
                            </section>
                            <section class="card">
                                <h2>{format!("Attempts ({})", detail.attempts.len())}</h2>
                                {detail.attempts.is_empty().then(|| view! { <p class="muted">"Not attempted yet."</p> })}
                                <ol class="attempts">
                                    {detail.attempts.into_iter().map(|a| view! {
                                        <li data-testid="delivery-attempt">
                                            <p>
                                                <strong>{a.response_status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "No response".into())}</strong>
                                                {format!(" · {} ms · ", a.duration_ms)}
                                                <time datetime=a.attempted_at.clone()>{crate::date_time_of(&a.attempted_at)}</time>
                                            </p>
                                            {a.error.map(|e| view! { <p class="alert alert-error">{e}</p> })}
                                            <details>
                                                <summary>"Request headers"</summary>
                                                <pre class="code-block">{headers(&a.request_headers)}</pre>
                                            </details>
                                            {(!a.response_headers.is_empty()).then(|| view! {
                                                <details>
                                                    <summary>"Response headers"</summary>
                                                    <pre class="code-block">{headers(&a.response_headers)}</pre>
                                                </details>
                                            })}
                                            {a.response_body.map(|body| view! {
                                                <details>
                                                    <summary>{if a.response_truncated { "Response body (first 4 KiB)" } else { "Response body" }}</summary>
                                                    <pre class="code-block">{body}</pre>
                                                </details>
                                            })}
                                        </li>
                                    }).collect_view()}
                                </ol>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

fn headers(list: &[(String, String)]) -> String {
    list.iter().map(|(name, value)| format!("{name}: {value}")).collect::<Vec<_>>().join("\n")
}

/// JSON laid out for reading (as it was sent if it doesn't parse).
fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json).ok().and_then(|v| serde_json::to_string_pretty(&v).ok()).unwrap_or_else(|| json.to_string())
}

/// Every event type with an example, and how to verify a request.
#[component]
pub fn WebhookEventsPage() -> impl IntoView {
    let slug = use_slug();
    view! {
        <PageTitle text="Webhook events" />
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <a href=move || base(&slug.get())>"Webhooks"</a>
            " / "
        </nav>
        <header class="page-header">
            <div>
                <h1>"Event catalogue"</h1>
                <p class="muted">
                    "Every request is a POST with a JSON body: the event's " <code>"id"</code> " (also the " <code>"webhook-id"</code>
                    " header, the same on every retry, so you can ignore repeats), its " <code>"type"</code> ", " <code>"timestamp"</code> ", "
                    <code>"api_version"</code> " and " <code>"data"</code> ". Answer with any 2xx status within 15 seconds; anything else is retried after 5 seconds, 5 minutes, 30 minutes, 2, 5, 10 and 10 hours."
                </p>
                <p class="muted">
                    "Verify the " <code>"webhook-signature"</code> " header with your endpoint's secret and any Standard Webhooks library before trusting a request. Events about one project or member reach an endpoint in the order they happened."
                </p>
            </div>
        </header>
        {EventType::ALL
            .iter()
            .map(|t| {
                let example = example_envelope(*t);
                view! {
                    <section class="card" id=t.as_str()>
                        <h2><code>{t.as_str()}</code></h2>
                        <p>{t.description()}</p>
                        <pre class="code-block" data-testid="event-example">{example}</pre>
                    </section>
                }
            })
            .collect_view()}
    }
}

fn example_envelope(t: EventType) -> String {
    let data: serde_json::Value = serde_json::from_str(t.example_data()).unwrap_or_default();
    let envelope = serde_json::json!({
        "id": "5f0c7a9e-3b21-4d8f-a6e4-9c2b1d0e8f73",
        "type": t.as_str(),
        "api_version": tessera_domain::webhooks::API_VERSION,
        "timestamp": "2026-12-09T10:15:00Z",
        "organization_id": "7e3d9b2a-1c4f-4e8b-9a6d-5f2e1c0b3a94",
        "data": data,
    });
    serde_json::to_string_pretty(&envelope).unwrap_or_default()
}
