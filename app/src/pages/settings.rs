//! Organization settings: where its data lives (region and isolation model) and, for Owners,
//! deleting the organization (scheduled, with a grace period in which it can be cancelled).

use crate::api::{org_settings, org_sign_in_policy, CancelOrgDeletion, DeleteOrg, SetOrgSignInPolicy};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::components::reauth::{wants_reauth, ReauthPrompt, ReauthWhenAsked};
use crate::pages::not_found::ErrorPage;
use crate::pages::org::{use_slug, CurrentOrg};
use leptos::prelude::*;
use tessera_domain::Permission;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let slug = use_slug();
    let CurrentOrg(org) = expect_context::<CurrentOrg>();
    let delete = ServerAction::<DeleteOrg>::new();
    let cancel = ServerAction::<CancelOrgDeletion>::new();
    let settings = Resource::new(move || (slug.get(), delete.version().get(), cancel.version().get()), |(slug, _, _)| org_settings(slug));
    let delete_error = last_error(delete);
    let reauthenticated = RwSignal::new(false);
    let cancel_error = last_error(cancel);
    view! {
        <PageTitle text="Settings" />
        <header class="page-header">
            <h1>"Settings"</h1>
        </header>
        // Created here, not inside the Suspense below: a resource made after an await gets a
        // creation order the browser can't reproduce, and hydration breaks.
        <SignInPolicyCard slug />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let role = org.await.map(|o| o.rights).ok();
                match settings.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(info) => {
                        let is_owner = role.is_some_and(|r| r.can(Permission::DeleteOrganization));
                        let slug_now = slug.get_untracked();
                        view! {
                            <section class="card" aria-labelledby="data-home">
                                <h2 id="data-home">"Where your data lives"</h2>
                                <dl class="facts">
                                    <dt>"Region"</dt>
                                    <dd data-testid="data-region">{info.region.clone()}</dd>
                                    <dt>"Isolation"</dt>
                                    <dd data-testid="data-model">{info.model.label()}</dd>
                                    <dt></dt>
                                    <dd class="muted">{info.model.description()}</dd>
                                    <dt>"Data version"</dt>
                                    <dd>{info.schema_version}</dd>
                                </dl>
                                <p class="muted">
                                    "Everything your organization stores is kept in this region only. To move it, contact support."
                                </p>
                            </section>
                            {match (info.delete_after.clone(), is_owner) {
                                (Some(when), true) => view! {
                                    <section class="card danger-zone" aria-labelledby="deletion">
                                        <h2 id="deletion">"Scheduled for deletion"</h2>
                                        <p data-testid="deletion-date">
                                            "This organization and all its data will be deleted permanently after "
                                            <time datetime=when.clone()>{when.clone()}</time>
                                            ". Until then it is read-only."
                                        </p>
                                        <ActionForm action=cancel attr:class="form">
                                            <FormAlert error=cancel_error fields=&[] />
                                            <input type="hidden" name="slug" value=slug_now.clone() />
                                            <Submit label="Cancel deletion" busy_label="Cancelling…" pending=cancel.pending() />
                                        </ActionForm>
                                    </section>
                                }
                                .into_any(),
                                (Some(when), false) => view! {
                                    <section class="card danger-zone">
                                        <h2>"Scheduled for deletion"</h2>
                                        <p>"An Owner scheduled this organization for deletion after " {when} ". Until then it is read-only."</p>
                                    </section>
                                }
                                .into_any(),
                                (None, true) => view! {
                                    <section class="card danger-zone" aria-labelledby="delete-org">
                                        <h2 id="delete-org">"Delete this organization"</h2>
                                        <p>
                                            "All projects, members and history are deleted for good after a grace period. "
                                            "Until then an Owner can cancel."
                                        </p>
                                        <ActionForm action=delete attr:class="form" attr:novalidate=true>
                                            <FormAlert error=delete_error fields=&["confirm"] />
                                            <input type="hidden" name="slug" value=slug_now.clone() />
                                            <Field
                                                label="Type the URL name to confirm"
                                                name="confirm"
                                                required=true
                                                error=delete_error
                                                hint="This is the name in your address bar after /t/."
                                            />
                                            <button type="submit" class="btn btn-danger" disabled=move || delete.pending().get()>
                                                "Delete organization"
                                            </button>
                                        </ActionForm>
                                        <Show when=move || wants_reauth(delete_error.get())>
                                            <ReauthPrompt on_done=move |_| reauthenticated.set(true) />
                                        </Show>
                                        <Show when=move || reauthenticated.get()>
                                            <p class="alert alert-info" role="status">"Thanks, confirmed. Press Delete organization again."</p>
                                        </Show>
                                    </section>
                                }
                                .into_any(),
                                (None, false) => ().into_any(),
                            }}
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Owners and Admins: whether members must use two-factor authentication. (Others get a 403
/// for the policy and see nothing.)
#[component]
fn SignInPolicyCard(slug: Memo<String>) -> impl IntoView {
    let save = ServerAction::<SetOrgSignInPolicy>::new();
    let error = last_error(save);
    let policy = Resource::new(move || (slug.get(), save.version().get()), |(slug, _)| org_sign_in_policy(slug));
    let saved = move || matches!(save.value().get(), Some(Ok(())));
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                policy.await.ok().map(|p| {
                    view! {
                        <section class="card" aria-labelledby="sign-in-policy">
                            <h2 id="sign-in-policy">"Sign-in security"</h2>
                            <ActionForm action=save attr:class="form">
                                <FormAlert error fields=&["require_mfa"] />
                                <input type="hidden" name="slug" value=move || slug.get() />
                                <label class="check">
                                    <input type="checkbox" name="require_mfa" checked=p.require_mfa />
                                    " Require two-factor authentication for every member"
                                </label>
                                <p class="field-error" role="alert">{move || error.get().filter(|e| e.field() == Some("require_mfa")).map(|e| e.to_string())}</p>
                                <label class="check">
                                    <input type="checkbox" name="sso_satisfies_mfa" checked=p.sso_satisfies_mfa />
                                    " Accept sign-ins through our single sign-on provider as two-factor"
                                </label>
                                <p class="muted" data-testid="members-without-mfa">
                                    {match p.members_without_mfa {
                                        0 => "Every member has two-factor authentication set up.".to_string(),
                                        1 => "1 member hasn't set up two-factor authentication yet; if required, they'll be asked to on their next visit.".to_string(),
                                        n => format!("{n} members haven't set up two-factor authentication yet; if required, they'll be asked to on their next visit."),
                                    }}
                                </p>
                                <Submit label="Save" busy_label="Saving…" pending=save.pending() />
                            </ActionForm>
                            <ReauthWhenAsked error=error again="Save" />
                            <Show when=saved>
                                <p class="muted" role="status" data-testid="policy-saved">"Saved."</p>
                            </Show>
                        </section>
                    }
                })
            })}
        </Suspense>
    }
}
