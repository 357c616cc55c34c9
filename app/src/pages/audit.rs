//! The audit log viewer (Owners and Admins): one timeline of everything done in the
//! organization, newest first, filtered by who, what, which target, when and from where. The
//! filters live in the URL, so a filtered view can be bookmarked and shared; each event opens
//! to its detail (who, through which key, from where, and the fields it changed); the filtered
//! set downloads as CSV or JSON Lines; and the hash chains are checked on request.

use crate::api::{audit_log, check_audit_integrity, AuditLogView, SetAuditRetention};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use crate::pages::org::{use_slug, CurrentOrg};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use tessera_domain::audit::{AuditEvent, AuditFilterInput, AuditIntegrity, AUDIT_RETENTION_MAX_DAYS, AUDIT_RETENTION_MIN_DAYS};
use tessera_domain::{AppError, Permission};

/// The filters the URL names (the viewer's state).
fn filters_of(query: &leptos_router::params::ParamsMap) -> AuditFilterInput {
    AuditFilterInput {
        actor: query.get("actor"),
        action: query.get("action"),
        target_type: query.get("target_type"),
        target: query.get("target"),
        from: query.get("from"),
        to: query.get("to"),
        ip: query.get("ip"),
        cursor: query.get("cursor"),
        limit: None,
    }
}

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let slug = use_slug();
    let query = use_query_map();
    let CurrentOrg(org) = expect_context::<CurrentOrg>();
    let filters = Memo::new(move |_| filters_of(&query.read()));
    let set_retention = ServerAction::<SetAuditRetention>::new();
    let events = Resource::new(
        move || (slug.get(), filters.get(), set_retention.version().get()),
        |(slug, f, _)| audit_log(slug, f.actor, f.action, f.target_type, f.target, f.from, f.to, f.ip, f.cursor),
    );
    // Checking walks both chains in full: on request (a link, so it works without JavaScript),
    // not on every visit.
    let check = Memo::new(move |_| query.read().get("integrity").as_deref() == Some("check"));
    let integrity = Resource::new(
        move || (slug.get(), check.get()),
        |(slug, check)| async move {
            match check {
                true => check_audit_integrity(slug).await.map(Some),
                false => Ok(None),
            }
        },
    );
    view! {
        <PageTitle text="Audit log" />
        <header class="page-header">
            <div>
                <h1>"Audit log"</h1>
                <p class="muted">"Everything done in this organization: by whom, through which key, from where, and what changed."</p>
            </div>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Checking integrity…"</p> }>
            {move || Suspend::new(async move {
                match integrity.await {
                    Ok(Some(integrity)) => view! { <IntegrityLine integrity /> }.into_any(),
                    Ok(None) => {
                        let query = filters.get_untracked().query_string();
                        let href = format!("/t/{}/settings/audit?{query}{}integrity=check", slug.get_untracked(), if query.is_empty() { "" } else { "&" });
                        view! {
                            <p class="muted" data-testid="audit-integrity">
                                "Each record is chained to the one before it, so changes made behind the app's back show. "
                                <a href=href>"Check integrity"</a>
                            </p>
                        }
                        .into_any()
                    }
                    Err(error) => view! { <p class="alert alert-error">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <Suspense fallback=|| view! { <p class="loading">"Loading events…"</p> }>
            {move || Suspend::new(async move {
                let role = org.await.map(|o| o.rights).ok();
                let slug_now = slug.get_untracked();
                let current = filters.get_untracked();
                match events.await {
                    Err(AppError::Invalid(problem)) => {
                        // A filter the URL got wrong: the form again, with the problem at its field.
                        let error = Signal::stored(Some(AppError::Invalid(problem)));
                        view! { <Filters slug=slug_now current people=Vec::new() error /> }.into_any()
                    }
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(view_data) => {
                        let AuditLogView { page, people, retention_days, export } = view_data;
                        let query_string = current.query_string();
                        let narrowed = !query_string.is_empty();
                        let next = page.next_cursor.clone().map(|cursor| {
                            let rest = if query_string.is_empty() { String::new() } else { format!("{query_string}&") };
                            format!("/t/{slug_now}/settings/audit?{rest}cursor={cursor}")
                        });
                        let export_link = |ext: &str| {
                            let q = if query_string.is_empty() { String::new() } else { format!("?{query_string}") };
                            format!("/t/{slug_now}/settings/audit/export.{ext}{q}")
                        };
                        let may_configure = role.is_some_and(|r| r.can(Permission::ConfigureAuditLog));
                        view! {
                            <Filters slug=slug_now.clone() current=current.clone() people error=Signal::stored(None) />
                            <section class="card" aria-labelledby="audit-events">
                                <div class="card-header">
                                    <h2 id="audit-events">
                                        {if narrowed { "Matching events" } else { "Events" }}
                                        {current.cursor.is_some().then_some(" (older)")}
                                    </h2>
                                    {if export {
                                        view! {
                                            <p class="actions">
                                                <a class="btn" href=export_link("csv") rel="external" download="" data-testid="audit-export-csv">"Download CSV"</a>
                                                " "
                                                <a class="btn" href=export_link("jsonl") rel="external" download="" data-testid="audit-export-jsonl">"Download JSON Lines"</a>
                                            </p>
                                        }.into_any()
                                    } else {
                                        view! {
                                            <p class="muted" data-testid="audit-export-upsell">
                                                "Exporting (CSV, JSON Lines and the API) comes with the Business plan. "
                                                <a href=format!("/t/{slug_now}/settings/billing")>"See plans"</a>
                                            </p>
                                        }.into_any()
                                    }}
                                </div>
                                {page.events.is_empty().then(|| view! {
                                    <p class="empty" data-testid="audit-empty">
                                        {if narrowed { "No event matches these filters." } else { "Nothing has been recorded yet." }}
                                    </p>
                                })}
                                <ol class="audit-events" data-testid="audit-events">
                                    {page.events.into_iter().map(|event| view! { <EventItem event /> }).collect_view()}
                                </ol>
                                {next.map(|href| view! {
                                    <p><a class="btn" href=href data-testid="audit-older">"Older events"</a></p>
                                })}
                            </section>
                            <Retention slug=slug_now days=retention_days may_configure action=set_retention />
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn IntegrityLine(integrity: AuditIntegrity) -> impl IntoView {
    let records = integrity.records;
    let pruned = integrity.pruned_at.clone().map(|at| format!(" Records before the retention period were removed on {}.", crate::date_of(&at)));
    if integrity.verified() {
        view! {
            <p class="alert alert-success" data-testid="audit-integrity">
                <strong>"Integrity: verified. "</strong>
                {format!("All {records} records are as they were written, in order, with none missing")}
                " (checked " <time datetime=integrity.checked_at.clone()>{crate::date_time_of(&integrity.checked_at)}</time> ")."
                {pruned}
            </p>
        }
        .into_any()
    } else {
        view! {
            <div class="alert alert-error" role="alert" data-testid="audit-integrity">
                <p><strong>"Integrity: NOT verified. "</strong> "These records were changed, removed or reordered after they were written:"</p>
                <ul>
                    {integrity.breaks.into_iter().map(|b| view! { <li data-testid="audit-break">{b.message}</li> }).collect_view()}
                </ul>
            </div>
        }
        .into_any()
    }
}

#[component]
fn Filters(slug: String, current: AuditFilterInput, people: Vec<(String, String)>, #[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    let value = |v: &Option<String>| RwSignal::new(v.clone().unwrap_or_default());
    let actor = current.actor.clone().unwrap_or_default();
    let actor_error = move || error.get().filter(|e| e.field() == Some("actor")).map(|e| e.to_string());
    view! {
        <section class="card" aria-labelledby="audit-filters">
            <h2 id="audit-filters">"Filter"</h2>
            // A plain GET form: the filters become the URL, with or without JavaScript.
            <form method="get" action=format!("/t/{slug}/settings/audit") class="form filters" data-testid="audit-filters">
                <FormAlert error fields=&["actor", "action", "target_type", "target", "from", "to", "ip"] />
                <div class="field">
                    <label for="field-actor">"Who"</label>
                    <select id="field-actor" name="actor">
                        <option value="" selected=actor.is_empty()>"Anyone"</option>
                        {people.into_iter().map(|(id, name)| {
                            let selected = id == actor;
                            view! { <option value=id selected=selected>{name}</option> }
                        }).collect_view()}
                    </select>
                    {move || actor_error().map(|m| view! { <p class="field-error">{m}</p> })}
                </div>
                <Field label="Action" name="action" error value=value(&current.action) hint="project.created, or project for all of its kind" />
                <Field label="Target type" name="target_type" error value=value(&current.target_type) hint="project, membership, api_key…" />
                <Field label="Target id" name="target" error value=value(&current.target) />
                <Field label="From" name="from" kind="date" error value=value(&current.from) />
                <Field label="To" name="to" kind="date" error value=value(&current.to) />
                <Field label="IP address or range" name="ip" error value=value(&current.ip) hint="203.0.113.7 or 203.0.113.0/24" />
                <p class="actions">
                    <button type="submit" class="btn btn-primary">"Filter"</button>
                    " "
                    <a href=format!("/t/{slug}/settings/audit")>"Clear filters"</a>
                </p>
            </form>
        </section>
    }
}

#[component]
fn EventItem(event: AuditEvent) -> impl IntoView {
    let target = event.targets.first().cloned();
    let target_words = target.as_ref().map(|t| match &t.name {
        Some(name) => format!("{} {name}", t.kind),
        None => format!("{} {}", t.kind, t.id),
    });
    let via = event.actor.api_key.as_ref().map(|k| format!(" via API key {}", k.name));
    let changes = event.metadata.get("changes").and_then(|c| c.as_object()).cloned().unwrap_or_default();
    view! {
        <li data-testid="audit-event">
            <details>
                <summary>
                    <time datetime=event.occurred_at.clone()>{crate::date_time_of(&event.occurred_at)}</time>
                    " · "
                    <span data-testid="audit-actor">{event.actor.name.clone()}{via.clone()}</span>
                    " · "
                    <code data-testid="audit-action">{event.action.clone()}</code>
                    {target_words.map(|t| view! { " · " <span>{t}</span> })}
                </summary>
                <dl class="facts">
                    <dt>"Actor"</dt>
                    <dd>
                        {event.actor.name.clone()}
                        {event.actor.id.clone().map(|id| view! { " " <code class="muted">{id}</code> })}
                        {via}
                    </dd>
                    <dt>"Target"</dt>
                    <dd>{target.map(|t| format!("{} {}", t.kind, t.id)).unwrap_or_default()}</dd>
                    <dt>"IP address"</dt>
                    <dd>{event.context.ip.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Browser or client"</dt>
                    <dd>{event.context.user_agent.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"Request id"</dt>
                    <dd><code>{event.context.request_id.clone().unwrap_or_else(|| "—".into())}</code></dd>
                    <dt>"Recorded in"</dt>
                    <dd>{format!("the {} log, record #{}", event.log.as_str(), event.seq)}</dd>
                </dl>
                {(!changes.is_empty()).then(|| view! {
                    <div class="table-scroll" tabindex="0" role="region" aria-label="Changed fields">
                        <table class="table diff" data-testid="audit-changes">
                            <thead><tr><th scope="col">"Field"</th><th scope="col">"Before"</th><th scope="col">"After"</th></tr></thead>
                            <tbody>
                                {changes.into_iter().map(|(field, change)| {
                                    let (old, new) = match change.as_object() {
                                        Some(o) if o.contains_key("old") || o.contains_key("new") => (o.get("old").map(shown), o.get("new").map(shown)),
                                        _ => (None, Some(shown(&change))),
                                    };
                                    view! {
                                        <tr>
                                            <th scope="row"><code>{field}</code></th>
                                            <td>{old.unwrap_or_else(|| "—".into())}</td>
                                            <td>{new.unwrap_or_else(|| "—".into())}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })}
            </details>
        </li>
    }
}

/// A recorded value as text: strings as they are, anything else as JSON.
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "—".into(),
        other => other.to_string(),
    }
}

const RETENTION_HINT: &str = "At least 90 days, at most 3650 (ten years).";
// The hint's numbers are the bounds the server enforces; this stops the build if they part.
const _: () = assert!(AUDIT_RETENTION_MIN_DAYS == 90 && AUDIT_RETENTION_MAX_DAYS == 3650);

#[component]
fn Retention(slug: String, days: i32, may_configure: bool, action: ServerAction<SetAuditRetention>) -> impl IntoView {
    let error = last_error(action);
    let saved = move || action.value().get().is_some_and(|r| r.is_ok());
    view! {
        <section class="card" aria-labelledby="audit-retention">
            <h2 id="audit-retention">"Retention"</h2>
            <p data-testid="audit-retention">
                {format!("Records are kept for {days} days, then removed by a daily job. ")}
                "The hash chain stays verifiable after old records are removed."
            </p>
            {may_configure.then(|| view! {
                <ActionForm action attr:class="form inline-form" attr:novalidate=true>
                    <FormAlert error fields=&["days"] />
                    <input type="hidden" name="slug" value=slug.clone() />
                    <Field
                        label="Keep records for (days)"
                        name="days"
                        kind="number"
                        error
                        value=RwSignal::new(days.to_string())
                        hint=RETENTION_HINT
                    />
                    <Submit label="Save" busy_label="Saving…" pending=action.pending() />
                    {move || saved().then(|| view! { <p class="muted" role="status">"Saved."</p> })}
                </ActionForm>
            })}
        </section>
    }
}
