//! Everything that arrives by email: sign-in links, the email confirmation, password resets.
//! A link opens a page that shows what it will do and waits for a click: mail scanners fetch
//! links on their own, and must not use them up.

use crate::api::{
    confirmation_link, emailed_link, DisownRegistration, RequestPasswordReset, RequestSignInLink, ResetPassword, SignInWithLink, VerifyEmail,
};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::pages::auth::{check_email, check_new_password};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use tessera_domain::dto::ConfirmationLink;

fn token_from_query() -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| query.read().get("token").unwrap_or_default())
}

/// "Email me a link" forms: the answer is a message, the same for every address.
#[component]
fn SentNotice(message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || message.get().is_some()>
            <div class="alert alert-info" role="status" data-testid="link-sent">
                {move || message.get()}
            </div>
        </Show>
    }
}

#[component]
pub fn SignInLinkPage() -> impl IntoView {
    let action = ServerAction::<RequestSignInLink>::new();
    let error = last_error(action);
    let sent = Signal::derive(move || action.value().get().and_then(|r| r.ok()));
    view! {
        <PageTitle text="Sign in with an email link" />
        <section class="auth-card card">
            <h1>"Sign in with an email link"</h1>
            <p class="muted">"No password needed: we email you a link that signs you in, in this browser."</p>
            <SentNotice message=sent />
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["email"] />
                <Field label="Email" name="email" kind="email" autocomplete="username" required=true error check=check_email />
                <Submit label="Email me a link" busy_label="Sending…" pending=action.pending() />
            </ActionForm>
            <p class="muted"><a href="/login">"Log in with a password instead"</a></p>
        </section>
    }
}

/// Where an emailed link lands: says whose link it is (or why it can't be used) and offers
/// the button that actually uses it.
#[component]
fn LinkLanding(title: &'static str, purpose: &'static str, intro: &'static str, children: ChildrenFn) -> impl IntoView {
    let token = token_from_query();
    let target = Resource::new(move || token.get(), move |token| emailed_link(purpose.to_string(), token));
    let children = StoredValue::new(children);
    view! {
        <PageTitle text=title />
        <section class="auth-card card">
            <h1>{title}</h1>
            <Suspense fallback=|| view! { <p class="loading">"Checking your link…"</p> }>
                {move || Suspend::new(async move {
                    match target.await {
                        Ok(email) => view! {
                            <p>{intro} " " <strong data-testid="link-email">{email}</strong></p>
                            {children.read_value()()}
                        }
                        .into_any(),
                        Err(e) => view! {
                            <div class="alert alert-error" role="alert">{e.to_string()}</div>
                            <p><a href="/login/link">"Get a new sign-in link"</a> " · " <a href="/forgot">"Reset your password"</a></p>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
pub fn MagicLinkPage() -> impl IntoView {
    let action = ServerAction::<SignInWithLink>::new();
    let error = last_error(action);
    let token = token_from_query();
    view! {
        <LinkLanding title="Sign in to Tessera" purpose="magic_link" intro="This link signs you in as">
            <ActionForm action attr:class="form">
                <FormAlert error fields=&[] />
                <input type="hidden" name="token" value=move || token.get() />
                <Submit label="Sign in" busy_label="Signing in…" pending=action.pending() />
            </ActionForm>
        </LinkLanding>
    }
}

/// The sign-up confirmation link. In the browser that signed up one click finishes it; anywhere
/// else the account's password is asked for too (the inbox's owner and whoever registered the
/// address may be different people), or the owner disowns the registration.
#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let confirm = ServerAction::<VerifyEmail>::new();
    let disown = ServerAction::<DisownRegistration>::new();
    let error = Signal::derive(move || last_error(confirm).get().or(last_error(disown).get()));
    let token = token_from_query();
    let link = Resource::new(move || token.get(), confirmation_link);
    view! {
        <PageTitle text="Confirm your email" />
        <section class="auth-card card">
            <h1>"Confirm your email"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Checking your link…"</p> }>
                {move || Suspend::new(async move {
                    match link.await {
                        Ok(ConfirmationLink { email, needs_password: false }) => view! {
                            <p>"Confirm that this address is yours: " <strong data-testid="link-email">{email}</strong></p>
                            <ActionForm action=confirm attr:class="form">
                                <FormAlert error fields=&[] />
                                <input type="hidden" name="token" value=move || token.get() />
                                <Submit label="Confirm my email" busy_label="Confirming…" pending=confirm.pending() />
                            </ActionForm>
                        }
                        .into_any(),
                        Ok(ConfirmationLink { email, needs_password: true }) => view! {
                            <p>"This link confirms " <strong data-testid="link-email">{email}</strong> " for the account created with it."</p>
                            <p class="muted">"You're in a different browser from the one the account was created in, so enter the password chosen then."</p>
                            <ActionForm action=confirm attr:class="form" attr:novalidate=true>
                                <FormAlert error fields=&["password"] />
                                <input type="hidden" name="token" value=move || token.get() />
                                <Field label="Password" name="password" kind="password" autocomplete="current-password" required=true error />
                                <Submit label="Confirm and sign in" busy_label="Confirming…" pending=confirm.pending() />
                            </ActionForm>
                            <ActionForm action=disown attr:class="form">
                                <input type="hidden" name="token" value=move || token.get() />
                                <p class="muted">
                                    "Didn't create an account? Someone else may have used your address. "
                                    <button type="submit" class="btn btn-link" data-testid="disown">"I didn't create this account"</button>
                                </p>
                            </ActionForm>
                        }
                        .into_any(),
                        Err(e) => view! {
                            <div class="alert alert-error" role="alert">{e.to_string()}</div>
                            <p><a href="/login/link">"Get a new sign-in link"</a> " · " <a href="/forgot">"Reset your password"</a></p>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let action = ServerAction::<RequestPasswordReset>::new();
    let error = last_error(action);
    let sent = Signal::derive(move || action.value().get().and_then(|r| r.ok()));
    view! {
        <PageTitle text="Reset your password" />
        <section class="auth-card card">
            <h1>"Reset your password"</h1>
            <p class="muted">"We'll email you a link to choose a new one."</p>
            <SentNotice message=sent />
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["email"] />
                <Field label="Email" name="email" kind="email" autocomplete="username" required=true error check=check_email />
                <Submit label="Email me a reset link" busy_label="Sending…" pending=action.pending() />
            </ActionForm>
            <p class="muted"><a href="/login">"Back to log in"</a></p>
        </section>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let action = ServerAction::<ResetPassword>::new();
    let error = last_error(action);
    let token = token_from_query();
    view! {
        <LinkLanding title="Choose a new password" purpose="reset_password" intro="Choose a new password for">
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["password"] />
                <input type="hidden" name="token" value=move || token.get() />
                <Field
                    label="New password"
                    name="password"
                    kind="password"
                    autocomplete="new-password"
                    required=true
                    error
                    check=check_new_password
                    hint="At least 10 characters. You'll be signed out on your other devices."
                />
                <Submit label="Save password and sign in" busy_label="Saving…" pending=action.pending() />
            </ActionForm>
        </LinkLanding>
    }
}
