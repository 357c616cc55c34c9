//! "Confirm it's you": shown in place when a sensitive action answers `ReauthRequired`. The
//! person re-enters their password or a code from their authenticator app; then the action
//! they asked for is tried again.

use crate::api::{my_mfa_status, Reauthenticate};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use leptos::prelude::*;
use tessera_domain::AppError;

/// Whether `error` asks for re-authentication.
pub fn wants_reauth(error: Option<AppError>) -> bool {
    matches!(error, Some(AppError::ReauthRequired))
}

#[component]
pub fn ReauthPrompt(
    /// Runs after a successful confirmation: retry whatever needed it.
    #[prop(into)]
    on_done: Callback<()>,
) -> impl IntoView {
    let action = ServerAction::<Reauthenticate>::new();
    let error = last_error(action);
    let status = Resource::new(|| (), |_| my_mfa_status());
    let handled = StoredValue::new(0usize);
    Effect::new(move |_| {
        let version = action.version().get();
        if version > handled.get_value() && matches!(action.value().get(), Some(Ok(()))) {
            handled.set_value(version);
            on_done.run(());
        }
    });
    view! {
        <section class="card reauth" aria-labelledby="reauth-title" data-testid="reauth">
            <h2 id="reauth-title">"Confirm it's you"</h2>
            <p class="muted">"This is a sensitive change, so we need to check it's really you. You won't be asked again for a few minutes."</p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let status = status.await.ok();
                    let has_code = status.as_ref().is_some_and(|s| s.enabled_since.is_some());
                    // With two-factor on, a password alone doesn't confirm it's you.
                    let has_password = !has_code && status.as_ref().is_none_or(|s| s.has_password);
                    view! {
                        <ActionForm action attr:class="form" attr:novalidate=true>
                            <FormAlert error fields=&["password", "code"] />
                            {has_password.then(|| view! {
                                <Field label="Your password" name="password" kind="password" autocomplete="current-password" error />
                            })}
                            {has_code.then(|| view! {
                                <Field
                                    label=if has_password { "Or a code from your authenticator app" } else { "Code from your authenticator app" }
                                    name="code"
                                    autocomplete="one-time-code"
                                    error
                                />
                            })}
                            {(!has_password && !has_code).then(|| view! {
                                <p>
                                    "Your account has no password or authenticator app to confirm with. "
                                    <a href="/login/link">"Sign in again with an emailed link"</a>
                                    ", then come back."
                                </p>
                            })}
                            {(has_password || has_code).then(|| view! {
                                <Submit label="Confirm" busy_label="Checking…" pending=action.pending() />
                            })}
                        </ActionForm>
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The usual answer to `ReauthRequired` under a form: the prompt in place, then a note to press
/// the form's button (`again`) once more.
#[component]
pub fn ReauthWhenAsked(#[prop(into)] error: Signal<Option<AppError>>, again: &'static str) -> impl IntoView {
    let confirmed = RwSignal::new(false);
    view! {
        <Show when=move || wants_reauth(error.get()) && !confirmed.get()>
            <ReauthPrompt on_done=move |_| confirmed.set(true) />
        </Show>
        <Show when=move || confirmed.get() && wants_reauth(error.get())>
            <p class="alert alert-info" role="status">{format!("Thanks, confirmed. Press {again} again.")}</p>
        </Show>
    }
}
