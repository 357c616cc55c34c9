//! An organization's API keys (Owners and Admins): create one (shown once), see when each was
//! last used, revoke.

use crate::api::{list_api_keys, CreateApiKey, RevokeApiKey};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::components::reauth::ReauthWhenAsked;
use crate::pages::not_found::ErrorPage;
use crate::pages::org::use_slug;
use leptos::prelude::*;
use tessera_domain::dto::ApiKeySummary;
use tessera_domain::Scope;

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let slug = use_slug();
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = Resource::new(move || (slug.get(), create.version().get(), revoke.version().get()), |(slug, _, _)| list_api_keys(slug));
    let create_error = last_error(create);
    let revoke_error = last_error(revoke);
    let new_key = move || create.value().get().and_then(Result::ok);
    view! {
        <PageTitle text="API keys" />
        <header class="page-header">
            <div>
                <h1>"API keys"</h1>
                <p class="muted">"Keys let your scripts and integrations use the API as this organization, limited to the scopes you choose."</p>
            </div>
        </header>
        {move || new_key().map(|created| view! {
            <section class="card recovery-codes" data-testid="new-api-key">
                <h2>"Copy your new key now"</h2>
                <p>"This is the only time it is shown. Store it in your secret manager; if it's lost, revoke it and create another."</p>
                <p><code class="secret" data-testid="api-key-secret">{created.key}</code></p>
                <p class="muted">"Use it as " <code>"Authorization: Bearer <key>"</code> " with " <code>{format!("/api/v1/orgs/{}/…", slug.get_untracked())}</code></p>
            </section>
        })}
        <section class="card form-card" aria-labelledby="create-key">
            <h2 id="create-key">"Create a key"</h2>
            <ActionForm action=create attr:class="form" attr:novalidate=true>
                <FormAlert error=create_error fields=&["name", "scopes", "expires_in_days"] />
                <input type="hidden" name="slug" value=move || slug.get() />
                <Field label="Name" name="name" required=true error=create_error hint="Where it's used, e.g. \"CI deploys\"." />
                <fieldset class="field">
                    <legend>"What it may do"</legend>
                    {Scope::all().into_iter().map(|scope| {
                        view! {
                            <label class="check">
                                <input type="checkbox" name="scopes[]" value=scope.as_str() />
                                " " {scope.description()} " " <code>{scope.as_str()}</code>
                            </label>
                        }
                    }).collect_view()}
                    <p class="field-error" role="alert">{move || create_error.get().filter(|e| e.field() == Some("scopes")).map(|e| e.to_string())}</p>
                </fieldset>
                <div class="field">
                    <label for="expires">"Expires"</label>
                    <select id="expires" name="expires_in_days">
                        <option value="30">"In 30 days"</option>
                        <option value="90" selected=true>"In 90 days"</option>
                        <option value="365">"In a year"</option>
                        <option value="never">"Never"</option>
                    </select>
                </div>
                <Submit label="Create key" busy_label="Creating…" pending=create.pending() />
            </ActionForm>
            <ReauthWhenAsked error=create_error again="Create key" />
        </section>
        <FormAlert error=revoke_error fields=&[] />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match keys.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No API keys yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="table" data-testid="api-keys">
                            <thead>
                                <tr><th>"Name"</th><th>"Key"</th><th>"Scopes"</th><th>"Created"</th><th>"Expires"</th><th>"Last used"</th><th></th></tr>
                            </thead>
                            <tbody>
                                {list.into_iter().map(|key| view! { <KeyRow key revoke slug=slug.get_untracked() /> }).collect_view()}
                            </tbody>
                        </table>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn KeyRow(key: ApiKeySummary, revoke: ServerAction<RevokeApiKey>, slug: String) -> impl IntoView {
    let scopes = key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let day = crate::date_of;
    view! {
        <tr data-testid="api-key-row">
            <td>{key.name.clone()}</td>
            <td><code>{format!("{}…", key.prefix)}</code></td>
            <td>{scopes}</td>
            <td>{day(&key.created_at)} " by " {key.created_by.clone()}</td>
            <td>{key.expires_at.as_deref().map(day).unwrap_or_else(|| "Never".into())}</td>
            <td>{key.last_used_at.as_deref().map(day).unwrap_or_else(|| "Never".into())}</td>
            <td>
                {match key.revoked_at.clone() {
                    Some(at) => view! { <span class="badge">"Revoked " {day(&at)}</span> }.into_any(),
                    None => view! {
                        <ActionForm action=revoke attr:class="inline-form">
                            <input type="hidden" name="slug" value=slug.clone() />
                            <input type="hidden" name="id" value=key.id.to_string() />
                            <button type="submit" class="btn btn-danger btn-sm">"Revoke"</button>
                        </ActionForm>
                    }
                    .into_any(),
                }}
            </td>
        </tr>
    }
}
