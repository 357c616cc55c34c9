use crate::api::{sign_in_providers, signed_up_as, LogIn, SignUp};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::pages::security::ProblemNote;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use tessera_domain::input::{Email, Password};

pub(crate) fn check_email(s: &str) -> Option<String> {
    Email::parse(s).err().map(|e| e.message)
}

pub(crate) fn check_new_password(s: &str) -> Option<String> {
    Password::parse_new(s).err().map(|e| e.message)
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    let error = last_error(action);
    // From an invitation: the invited address filled in, the invitation (proof of the address)
    // carried along, and back to it after.
    let query = use_query_map();
    let email = RwSignal::new(query.read_untracked().get("email").unwrap_or_default());
    let invitation = move || query.read().get("invitation").unwrap_or_default();
    let next = move || query.read().get("next").unwrap_or_default();
    let login = move || if next().is_empty() { "/login".to_string() } else { format!("/login?next={}", crate::query_escape(&next())) };
    view! {
        <PageTitle text="Create your account" />
        <section class="auth-card card">
            <h1>"Create your account"</h1>
            <p class="muted">"Start a workspace for your team in under a minute."</p>
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["email", "password", "name"] />
                <Field label="Your name" name="name" autocomplete="name" error hint="Optional; shown to your teammates." />
                <input type="hidden" name="next" value=next />
                <input type="hidden" name="invitation" value=invitation />
                <Field label="Work email" name="email" kind="email" autocomplete="email" required=true error check=check_email value=email />
                <Field
                    label="Password"
                    name="password"
                    kind="password"
                    autocomplete="new-password"
                    required=true
                    error
                    check=check_new_password
                    hint="At least 10 characters."
                />
                <Submit label="Create account" busy_label="Creating account…" pending=action.pending() />
            </ActionForm>
            <p class="muted">"Already have an account? " <a href=login>"Log in"</a></p>
        </section>
    }
}

/// After signing up: the link in the mail finishes it. Said the same way whether or not the
/// address had an account already (its owner got a different mail).
#[component]
pub fn SignUpSentPage() -> impl IntoView {
    let address = Resource::new(|| (), |_| signed_up_as());
    view! {
        <PageTitle text="Check your inbox" />
        <section class="auth-card card">
            <h1>"Check your inbox"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let to = address.await.ok().flatten();
                    view! {
                        <p data-testid="sign-up-sent">
                            {match to {
                                Some(to) => view! { "We sent a message to " <strong>{to}</strong> ". " }.into_any(),
                                None => view! { "We sent you a message. " }.into_any(),
                            }}
                            "Follow its link in this browser to finish creating your account. The link works for 24 hours."
                        </p>
                    }
                })}
            </Suspense>
            <p class="muted">"Nothing arrived after a few minutes? Check your spam folder, or " <a href="/signup">"sign up again"</a> " (a typo in the address is the usual cause)."</p>
            <p class="muted">"Already have an account? " <a href="/login">"Log in"</a></p>
        </section>
    }
}

#[component]
pub fn LogInPage() -> impl IntoView {
    let action = ServerAction::<LogIn>::new();
    let error = last_error(action);
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    view! {
        <PageTitle text="Log in" />
        <section class="auth-card card">
            <h1>"Log in to Tessera"</h1>
            <ProblemNote />
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["email", "password"] />
                <input type="hidden" name="next" value=next />
                <Field label="Email" name="email" kind="email" autocomplete="username" required=true error />
                <Field label="Password" name="password" kind="password" autocomplete="current-password" required=true error />
                <Submit label="Log in" busy_label="Logging in…" pending=action.pending() />
            </ActionForm>
            <ProviderButtons next=Signal::derive(next) />
            <a class="btn btn-ghost btn-block sso-button" href=move || format!("/login/sso?next={}", crate::query_escape(&next()))>"Sign in with SSO"</a>
            <p class="muted">
                <a href="/login/link">"Email me a sign-in link instead"</a>
                " · "
                <a href="/forgot">"Forgot your password?"</a>
            </p>
            <p class="muted">
                "New to Tessera? "
                <a href=move || if next().is_empty() { "/signup".to_string() } else { format!("/signup?next={}", crate::query_escape(&next())) }>
                    "Create an account"
                </a>
            </p>
        </section>
    }
}

/// "Continue with …" for each outside identity provider configured.
#[component]
fn ProviderButtons(#[prop(into)] next: Signal<String>) -> impl IntoView {
    let providers = Resource::new(|| (), |_| sign_in_providers());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let providers = providers.await.unwrap_or_default();
                (!providers.is_empty()).then(|| view! {
                    <div class="providers">
                        <p class="muted divider">"or"</p>
                        {providers.into_iter().map(|p| {
                            let href = move || {
                                let next = next.get();
                                if next.is_empty() {
                                    format!("/auth/oidc/{}/start", p.id)
                                } else {
                                    format!("/auth/oidc/{}/start?next={}", p.id, crate::query_escape(&next))
                                }
                            };
                            // rel="external": a full page load (to our server, then the provider), not an in-app route.
                            view! { <a class="btn btn-ghost btn-block" href=href rel="external">{format!("Continue with {}", p.name)}</a> }
                        }).collect_view()}
                    </div>
                })
            })}
        </Suspense>
    }
}
