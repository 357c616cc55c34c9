//! Single sign-on, for an organization's Owners and Admins: connect the SAML IdP, prove the
//! email domains, map attributes and groups, require SSO. And, for everyone, "Sign in with SSO".

use crate::api::{
    org_sso_settings, sso_handoff, AddSsoDomain, ConfirmSsoHandoff, FindSso, RemoveSsoDomain, RemoveSsoIdp, SaveSsoIdp, SaveSsoMapping,
    VerifySsoDomain,
};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use crate::components::raw_text::{PageTitle, TextArea};
use crate::components::reauth::{wants_reauth, ReauthPrompt};
use crate::pages::not_found::ErrorPage;
use crate::pages::org::use_slug;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use tessera_domain::dto::{PreviousCertificates, SsoDomain, SsoMapping, SsoRefusalCount};
use tessera_domain::Role;

#[component]
pub fn SsoPage() -> impl IntoView {
    let slug = use_slug();
    let save_idp = ServerAction::<SaveSsoIdp>::new();
    let remove_idp = ServerAction::<RemoveSsoIdp>::new();
    let save_mapping = ServerAction::<SaveSsoMapping>::new();
    let add_domain = ServerAction::<AddSsoDomain>::new();
    let verify_domain = ServerAction::<VerifySsoDomain>::new();
    let remove_domain = ServerAction::<RemoveSsoDomain>::new();
    let settings = Resource::new(
        move || {
            (
                slug.get(),
                save_idp.version().get(),
                remove_idp.version().get(),
                save_mapping.version().get(),
                add_domain.version().get() + verify_domain.version().get() + remove_domain.version().get(),
            )
        },
        |(slug, ..)| org_sso_settings(slug),
    );
    let idp_error = last_error(save_idp);
    let remove_error = last_error(remove_idp);
    let mapping_error = last_error(save_mapping);
    let domain_error = Signal::derive(move || last_error(add_domain).get().or(last_error(verify_domain).get()).or(last_error(remove_domain).get()));
    let needs_reauth = Signal::derive(move || wants_reauth(idp_error.get()) || wants_reauth(mapping_error.get()) || wants_reauth(remove_error.get()));
    let reauthenticated = RwSignal::new(false);
    view! {
        <PageTitle text="Single sign-on" />
        <header class="page-header">
            <div>
                <h1>"Single sign-on"</h1>
                <p class="muted">"Let your team sign in through your identity provider (Okta, Entra ID, Google Workspace…) with SAML."</p>
            </div>
        </header>
        <Show when=move || needs_reauth.get() && !reauthenticated.get()>
            <ReauthPrompt on_done=move |_| reauthenticated.set(true) />
        </Show>
        <Show when=move || needs_reauth.get() && reauthenticated.get()>
            <p class="alert alert-info" role="status">"Thanks, confirmed. Save again."</p>
        </Show>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(s) => {
                        view! {
                            <section class="card" aria-labelledby="sp">
                                <h2 id="sp">"1. Tessera's details for your IdP"</h2>
                                <dl class="facts">
                                    <dt>"Entity ID / metadata URL"</dt>
                                    <dd><code data-testid="sp-entity-id">{s.sp_entity_id.clone()}</code></dd>
                                    <dt>"ACS (reply) URL"</dt>
                                    <dd><code data-testid="sp-acs-url">{s.sp_acs_url.clone()}</code></dd>
                                    <dt>"Sign-in URL"</dt>
                                    <dd><code>{s.login_url.clone()}</code></dd>
                                </dl>
                                <p class="muted">"Send the email address as the NameID (or an \"email\" attribute), and sign responses or assertions with SHA-256."</p>
                            </section>
                            <section class="card" aria-labelledby="idp">
                                <h2 id="idp">"2. Your identity provider"</h2>
                                {s.idp_entity_id.clone().map(|entity| view! {
                                    <p data-testid="idp-connected">"Connected: " <code>{entity}</code> " · " {s.idp_sso_url.clone().unwrap_or_default()}</p>
                                })}
                                <SigningCertificates current=s.signing_certificates.clone() previous=s.previous_certificates.clone() />
                                <ActionForm action=save_idp attr:class="form" attr:novalidate=true>
                                    <FormAlert error=idp_error fields=&["metadata_xml", "metadata_url"] />
                                    <input type="hidden" name="slug" value=move || slug.get() />
                                    <Field label="Metadata URL" name="metadata_url" error=idp_error hint="Where your IdP publishes its SAML metadata." />
                                    <div class="field">
                                        <label for="metadata-xml">"…or paste the metadata XML"</label>
                                        <TextArea id="metadata-xml" name="metadata_xml" rows=4 />
                                        <p class="field-error" role="alert">{move || idp_error.get().filter(|e| e.field() == Some("metadata_xml")).map(|e| e.to_string())}</p>
                                    </div>
                                    <Submit label="Save identity provider" busy_label="Checking…" pending=save_idp.pending() />
                                </ActionForm>
                                {s.idp_entity_id.is_some().then(|| view! {
                                    <ActionForm action=remove_idp attr:class="inline-form">
                                        <input type="hidden" name="slug" value=move || slug.get() />
                                        <button type="submit" class="btn btn-ghost btn-sm">"Disconnect identity provider"</button>
                                    </ActionForm>
                                })}
                            </section>
                            <section class="card" aria-labelledby="domains">
                                <h2 id="domains">"3. Your email domains"</h2>
                                <p class="muted">"Only people with addresses at your verified domains can sign in through your IdP. Prove a domain with a DNS TXT record."</p>
                                <FormAlert error=domain_error fields=&[] />
                                <ul class="card-list" role="list">
                                    {s.domains.clone().into_iter().map(|d| view! { <DomainRow domain=d slug=slug.get_untracked() verify=verify_domain remove=remove_domain /> }).collect_view()}
                                </ul>
                                <ActionForm action=add_domain attr:class="form form-row" attr:novalidate=true>
                                    <input type="hidden" name="slug" value=move || slug.get() />
                                    <Field label="Domain" name="domain" error=domain_error hint="e.g. acme.com" />
                                    <Submit label="Add domain" busy_label="Adding…" pending=add_domain.pending() />
                                </ActionForm>
                            </section>
                            {s.mapping.clone().map(|m| view! { <MappingForm mapping=m slug=slug.get_untracked() action=save_mapping /> })}
                            <RefusedSignIns refusals=s.recent_refusals.clone() />
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn DomainRow(domain: SsoDomain, slug: String, verify: ServerAction<VerifySsoDomain>, remove: ServerAction<RemoveSsoDomain>) -> impl IntoView {
    let slug = StoredValue::new(slug);
    let name = StoredValue::new(domain.domain.clone());
    view! {
        <li class="session-row" data-testid="sso-domain">
            <div>
                <strong>{domain.domain.clone()}</strong>
                {if domain.verified {
                    view! { <span class="badge">"Verified"</span> }.into_any()
                } else {
                    view! {
                        <p class="muted">
                            "Add a TXT record named " <code data-testid="txt-name">{domain.txt_name.clone()}</code>
                            " with the value " <code data-testid="txt-value">{domain.txt_value.clone()}</code> ", then verify."
                        </p>
                    }
                    .into_any()
                }}
            </div>
            <div class="button-row">
                {(!domain.verified).then(|| view! {
                    <ActionForm action=verify attr:class="inline-form">
                        <input type="hidden" name="slug" value=slug.get_value() />
                        <input type="hidden" name="domain" value=name.get_value() />
                        <button type="submit" class="btn btn-primary btn-sm">"Verify"</button>
                    </ActionForm>
                })}
                <ActionForm action=remove attr:class="inline-form">
                    <input type="hidden" name="slug" value=slug.get_value() />
                    <input type="hidden" name="domain" value=name.get_value() />
                    <button type="submit" class="btn btn-ghost btn-sm">"Remove"</button>
                </ActionForm>
            </div>
        </li>
    }
}

#[component]
fn MappingForm(mapping: SsoMapping, slug: String, action: ServerAction<SaveSsoMapping>) -> impl IntoView {
    let error = last_error(action);
    let saved = move || matches!(action.value().get(), Some(Ok(())));
    let field_error = move |name: &'static str| move || error.get().filter(|e| e.field() == Some(name)).map(|e| e.to_string());
    view! {
        <section class="card" aria-labelledby="mapping">
            <h2 id="mapping">"4. Who gets in, and as what"</h2>
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["group_roles", "default_role", "require_sso"] />
                <input type="hidden" name="slug" value=slug />
                <div class="field">
                    <label for="email-attribute">"Email attribute"</label>
                    <input id="email-attribute" name="email_attribute" value=mapping.email_attribute.clone() placeholder="(the NameID)" />
                </div>
                <div class="field">
                    <label for="name-attribute">"Name attribute"</label>
                    <input id="name-attribute" name="name_attribute" value=mapping.name_attribute.clone() placeholder="e.g. displayName" />
                </div>
                <div class="field">
                    <label for="groups-attribute">"Groups attribute"</label>
                    <input id="groups-attribute" name="groups_attribute" value=mapping.groups_attribute.clone() placeholder="e.g. groups" />
                </div>
                <div class="field">
                    <label for="group-roles">"Groups to roles"</label>
                    <TextArea id="group-roles" name="group_roles" rows=3 placeholder="engineering = admin" value=mapping.group_roles.clone() />
                    <p class="field-hint">"One per line: group = admin, member or viewer. The highest role matched wins; Owners are never changed."</p>
                    <p class="field-error" role="alert">{field_error("group_roles")}</p>
                </div>
                <div class="field">
                    <label for="default-role">"Role for new people"</label>
                    <select id="default-role" name="default_role">
                        {[Role::Admin, Role::Member, Role::Viewer].into_iter().map(|r| view! {
                            <option value=r.as_str() selected=r == mapping.default_role>{r.label()}</option>
                        }).collect_view()}
                    </select>
                </div>
                <label class="check"><input type="checkbox" name="jit_provisioning" checked=mapping.jit_provisioning /> " Create accounts for new people on their first sign-in"</label>
                <label class="check"><input type="checkbox" name="allow_idp_initiated" checked=mapping.allow_idp_initiated /> " Allow signing in from the IdP's app launcher"</label>
                <label class="check"><input type="checkbox" name="require_sso" checked=mapping.require_sso /> " Require members to sign in with SSO (Owners can still use their password)"</label>
                <p class="field-error" role="alert">{field_error("require_sso")}</p>
                <Submit label="Save sign-in rules" busy_label="Saving…" pending=action.pending() />
            </ActionForm>
            <Show when=saved>
                <p class="muted" role="status" data-testid="mapping-saved">"Saved."</p>
            </Show>
        </section>
    }
}

/// "Sign in with SSO": find the organization by the address's domain and go to its IdP.
#[component]
pub fn SsoSignInPage() -> impl IntoView {
    let action = ServerAction::<FindSso>::new();
    let error = last_error(action);
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(Ok(url)) = action.value().get() {
            let _ = window().location().set_href(&url);
        }
    });
    view! {
        <PageTitle text="Sign in with SSO" />
        <section class="auth-card card">
            <h1>"Sign in with SSO"</h1>
            <p class="muted">"Enter your work email; we'll take you to your organization's sign-in page."</p>
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["email"] />
                <input type="hidden" name="next" value=next />
                <Field label="Work email" name="email" kind="email" autocomplete="username" required=true error />
                <Submit label="Continue" busy_label="Finding your organization…" pending=action.pending() />
            </ActionForm>
            <p class="muted"><a href="/login">"Back to other ways to log in"</a></p>
        </section>
    }
}

/// An IdP-initiated sign-in, confirmed here before anyone is signed in: without this, a page
/// anywhere could post someone else's valid response to our ACS and sign this browser in as
/// them (login CSRF). The person sees which account and organization, and chooses.
#[component]
pub fn SsoConfirmPage() -> impl IntoView {
    let query = use_query_map();
    let token = Memo::new(move |_| query.read().get("token").unwrap_or_default());
    let preview = Resource::new(move || token.get(), sso_handoff);
    let confirm = ServerAction::<ConfirmSsoHandoff>::new();
    let error = last_error(confirm);
    view! {
        <PageTitle text="Continue with single sign-on" />
        <section class="auth-card card" data-testid="sso-confirm">
            <Suspense fallback=|| view! { <p class="loading">"Checking the sign-in…"</p> }>
                {move || Suspend::new(async move {
                    match preview.await {
                        Ok(preview) => view! {
                            <h1>{format!("Continue to {}?", preview.organization)}</h1>
                            <p>
                                {format!("Your identity provider is signing you in to {} as ", preview.organization)}
                                <strong data-testid="sso-confirm-email">{preview.email.clone()}</strong>"."
                            </p>
                            <p class="muted">"If you didn't just choose Tessera in your identity provider, don't continue."</p>
                            <ActionForm action=confirm attr:class="form">
                                <FormAlert error fields=&[] />
                                <input type="hidden" name="token" value=token.get_untracked() />
                                <div class="button-row">
                                    <Submit label="Continue" busy_label="Signing in…" pending=confirm.pending() />
                                    <a class="btn btn-ghost" href="/login">"Cancel"</a>
                                </div>
                            </ActionForm>
                        }
                        .into_any(),
                        Err(error) => view! {
                            <h1>"This sign-in can't continue"</h1>
                            <p role="alert">{error.to_string()}</p>
                            <a class="btn btn-ghost" href="/login">"Go to the sign-in page"</a>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The certificates responses must be signed with, and those still trusted after the IdP's last
/// change of certificate.
#[component]
fn SigningCertificates(current: Vec<String>, previous: Option<PreviousCertificates>) -> impl IntoView {
    (!current.is_empty()).then(|| {
        view! {
            <dl class="facts">
                <dt>"Signing certificates (SHA-256)"</dt>
                {current.into_iter().map(|f| view! { <dd><code data-testid="signing-certificate">{f}</code></dd> }).collect_view()}
                {previous.map(|p| view! {
                    <dt>{format!("Previous, still trusted until {}", crate::date_of(&p.trusted_until))}</dt>
                    {p.fingerprints.into_iter().map(|f| view! { <dd><code data-testid="previous-certificate">{f}</code></dd> }).collect_view()}
                })}
            </dl>
        }
    })
}

/// "it has expired" as a table cell: "It has expired".
fn sentence_case(clause: &str) -> String {
    let mut chars = clause.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Sign-ins the IdP sent that Tessera refused, counted per quarter hour and reason, so an admin
/// can see a misconfiguration (or someone probing) at a glance.
#[component]
fn RefusedSignIns(refusals: Vec<SsoRefusalCount>) -> impl IntoView {
    (!refusals.is_empty()).then(|| {
        view! {
            <section class="card" aria-labelledby="refused">
                <h2 id="refused">"Refused sign-ins, last 7 days"</h2>
                <table class="table">
                    <thead><tr><th scope="col">"From"</th><th scope="col">"Why"</th><th scope="col">"Times"</th></tr></thead>
                    <tbody>
                        {refusals.into_iter().map(|r| view! {
                            <tr data-testid="refusal-row">
                                <td><time datetime=r.window_start.clone()>{crate::date_time_of(&r.window_start)}</time></td>
                                <td>{sentence_case(&r.reason)}</td>
                                <td>{r.refused}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
    })
}
