use crate::api::{my_invitations, my_session, org_placement_options, AcceptInvitation, CreateOrg, DeclineInvitation, ResendVerification};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::pages::invitations::InvitationsCard;
use leptos::prelude::*;
use tessera_domain::input::{OrgName, OrgSlug};
use tessera_domain::placement::{PlacementOptions, TenancyModel};
use tessera_domain::AppError;

/// Signed in: your organizations. Signed out: what Tessera is.
#[component]
pub fn HomePage() -> impl IntoView {
    let session = Resource::new(|| (), |_| my_session());
    let accept = ServerAction::<AcceptInvitation>::new();
    let decline = ServerAction::<DeclineInvitation>::new();
    let invitations = Resource::new(move || decline.version().get(), |_| my_invitations());
    view! {
        <PageTitle text="" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(Some(session)) => {
                        let orgs = session.orgs;
                        let unverified = (!session.user.email_verified).then(|| session.user.email.clone());
                        view! {
                            {unverified.map(|email| view! { <VerifyReminder email /> })}
                            <InvitationsCard invitations accept decline />
                            <section class="page">
                                <header class="page-header">
                                    <h1>"Your organizations"</h1>
                                    <a class="btn btn-primary" href="/orgs/new">"New organization"</a>
                                </header>
                                {if orgs.is_empty() {
                                    view! {
                                        <div class="empty-state card">
                                            <h2>"You're not in an organization yet"</h2>
                                            <p>"Create one for your team, or ask an admin of theirs to invite you."</p>
                                            <a class="btn btn-primary" href="/orgs/new">"Create an organization"</a>
                                        </div>
                                    }
                                        .into_any()
                                } else {
                                    view! {
                                        <ul class="card-list" role="list">
                                            {orgs
                                                .into_iter()
                                                .map(|org| {
                                                    let role = org.role_label().to_string();
                                                    view! {
                                                        <li class="card card-link">
                                                            <a href=format!("/t/{}", org.slug)>
                                                                <strong>{org.name}</strong>
                                                                <span class="muted">{format!("/t/{}", org.slug)}</span>
                                                            </a>
                                                            <span class="badge">{role}</span>
                                                        </li>
                                                    }
                                                })
                                                .collect_view()}
                                        </ul>
                                    }
                                        .into_any()
                                }}
                            </section>
                        }
                            .into_any()
                    }
                    _ => {
                        view! {
                            <section class="hero">
                                <h1>"Your team's workspace, ready for customer one hundred."</h1>
                                <p class="lead">
                                    "Organizations, roles and an audit trail from day one. Every organization's data stays its own."
                                </p>
                                <div class="hero-actions">
                                    <a class="btn btn-primary" href="/signup">"Create an account"</a>
                                    <a class="btn btn-ghost" href="/login">"Log in"</a>
                                </div>
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Shown until the person follows the confirmation link sent at sign-up.
#[component]
fn VerifyReminder(email: String) -> impl IntoView {
    let resend = ServerAction::<ResendVerification>::new();
    let error = last_error(resend);
    let sent = move || matches!(resend.value().get(), Some(Ok(())));
    view! {
        <div class="alert alert-info verify-reminder" role="status" data-testid="verify-reminder">
            <span>"Confirm your email: we sent a link to " <strong>{email}</strong> "."</span>
            <ActionForm action=resend attr:class="inline-form">
                <button type="submit" class="btn btn-ghost" disabled=move || resend.pending().get() || sent()>
                    {move || if sent() { "Sent again" } else { "Resend" }}
                </button>
            </ActionForm>
            <FormAlert error fields=&[] />
        </div>
    }
}

fn check_org_name(s: &str) -> Option<String> {
    OrgName::parse(s).err().map(|e| e.message)
}

fn check_slug(s: &str) -> Option<String> {
    OrgSlug::parse(s).err().map(|e| e.message)
}

#[component]
pub fn NewOrgPage() -> impl IntoView {
    let action = ServerAction::<CreateOrg>::new();
    let error = last_error(action);
    let options = Resource::new(|| (), |_| org_placement_options());
    let name = RwSignal::new(String::new());
    let slug = RwSignal::new(String::new());
    // Suggest a URL name from the organization name until the person edits it themselves.
    let slug_edited = RwSignal::new(false);
    // Browser only: effects have no executor while the server renders.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let suggestion = OrgSlug::suggest(&name.get());
        if !slug_edited.get_untracked() {
            slug.set(suggestion);
        }
    });
    view! {
        <PageTitle text="New organization" />
        <section class="auth-card card">
            <h1>"Create an organization"</h1>
            <p class="muted">"You'll be its Owner. You can add your team next."</p>
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["name", "slug", "region", "model"] />
                <Field label="Organization name" name="name" required=true error check=check_org_name value=name />
                <div on:input=move |_| slug_edited.set(true)>
                    <Field
                        label="URL name"
                        name="slug"
                        required=true
                        error
                        check=check_slug
                        value=slug
                        hint="Lowercase letters, digits and hyphens; your address becomes /t/your-name."
                    />
                </div>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        options.await.ok().map(|options| view! { <PlacementChoice options error /> })
                    })}
                </Suspense>
                <Submit label="Create organization" busy_label="Creating…" pending=action.pending() />
            </ActionForm>
        </section>
    }
}

/// Where the new organization's data will live: a region (when there is a choice) and how it
/// is isolated. Plain radio buttons, so the choice works before (and without) hydration.
#[component]
fn PlacementChoice(options: PlacementOptions, #[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    let field_error = move |field: &'static str| {
        move || error.get().filter(|e| e.field() == Some(field)).map(|e| view! { <p class="field-error" role="alert">{e.to_string()}</p> })
    };
    let default_region = options.default_region.clone();
    let regions = options.regions.clone();
    view! {
        <fieldset class="field choice-group">
            <legend>"Data region"</legend>
            <p class="field-hint">"Your organization's data is stored and processed only in this region."</p>
            {regions
                .into_iter()
                .map(|region| {
                    let checked = region == default_region;
                    view! {
                        <label class="choice">
                            <input type="radio" name="region" value=region.clone() checked=checked />
                            <span>{region.clone()}</span>
                        </label>
                    }
                })
                .collect_view()}
            {field_error("region")}
        </fieldset>
        <fieldset class="field choice-group">
            <legend>"Data isolation"</legend>
            {options
                .models
                .into_iter()
                .map(|model| {
                    view! {
                        <label class="choice">
                            <input type="radio" name="model" value=model.as_str() checked=model == TenancyModel::Pooled />
                            <span>
                                <strong>{model.label()}</strong>
                                <span class="muted">{model.description()}</span>
                            </span>
                        </label>
                    }
                })
                .collect_view()}
            {field_error("model")}
        </fieldset>
    }
}
