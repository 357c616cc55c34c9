//! Account security: two-factor authentication (authenticator app + recovery codes), and the
//! second step of signing in for accounts that have it.

use crate::api::{
    my_account_activity, my_identities, my_mfa_status, sign_in_providers, take_sign_in_problem, BeginMfaEnrolment, ConfirmMfaEnrolment,
    ConnectIdentity, DisableMfa, DisconnectIdentity, RegenerateRecoveryCodes, VerifySignInCode,
};
use crate::components::form::{last_error, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::components::reauth::{wants_reauth, ReauthPrompt};
use crate::pages::not_found::ErrorPage;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use tessera_domain::dto::MfaEnrolment;

/// A local path to return to (`?next=`), never another site.
fn local_next() -> Memo<Option<String>> {
    let query = use_query_map();
    Memo::new(move |_| query.read().get("next").and_then(|n| tessera_domain::input::local_path(&n).map(str::to_string)))
}

/// The links between the account pages.
#[component]
pub fn AccountNav() -> impl IntoView {
    view! {
        <nav class="tabs" aria-label="Account">
            <a href="/account/security">"Security"</a>
            <a href="/account/sessions">"Sessions"</a>
        </nav>
    }
}

/// The second step of signing in.
#[component]
pub fn SignInCodePage() -> impl IntoView {
    let action = ServerAction::<VerifySignInCode>::new();
    let error = last_error(action);
    view! {
        <PageTitle text="Two-factor authentication" />
        <section class="auth-card card">
            <h1>"Two-factor authentication"</h1>
            <p class="muted">"Open your authenticator app and enter the 6-digit code it shows for Tessera."</p>
            <ActionForm action attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["code"] />
                <Field
                    label="Authentication code"
                    name="code"
                    autocomplete="one-time-code"
                    required=true
                    error
                    hint="Lost your phone? Enter one of your recovery codes instead."
                />
                <Submit label="Verify" busy_label="Verifying…" pending=action.pending() />
            </ActionForm>
            <p class="muted"><a href="/login">"Start over"</a></p>
        </section>
    }
}

#[component]
fn RecoveryCodes(codes: Vec<String>) -> impl IntoView {
    view! {
        <div class="card recovery-codes" data-testid="recovery-codes">
            <h3>"Your recovery codes"</h3>
            <p>
                "Save these somewhere safe, such as a password manager. Each one signs you in once if you lose your "
                "phone. We won't show them again."
            </p>
            <ol class="code-list">{codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ol>
        </div>
    }
}

#[component]
fn EnrolmentSteps(enrolment: MfaEnrolment, confirm: ServerAction<ConfirmMfaEnrolment>) -> impl IntoView {
    let error = last_error(confirm);
    view! {
        <div class="enrolment" data-testid="mfa-enrolment">
            <ol class="steps">
                <li>"Open an authenticator app (1Password, Google Authenticator, Authy…) and scan this code."</li>
            </ol>
            <div class="qr" inner_html=enrolment.qr_svg.clone()></div>
            <p class="muted">
                "Can't scan? Enter this key instead: " <code data-testid="totp-secret">{enrolment.secret.clone()}</code>
            </p>
            <ActionForm action=confirm attr:class="form" attr:novalidate=true>
                <FormAlert error fields=&["code"] />
                <Field label="Code from the app" name="code" autocomplete="one-time-code" required=true error />
                <Submit label="Turn on" busy_label="Checking…" pending=confirm.pending() />
            </ActionForm>
        </div>
    }
}

#[component]
pub fn SecurityPage() -> impl IntoView {
    let begin = ServerAction::<BeginMfaEnrolment>::new();
    let confirm = ServerAction::<ConfirmMfaEnrolment>::new();
    let disable = ServerAction::<DisableMfa>::new();
    let regenerate = ServerAction::<RegenerateRecoveryCodes>::new();
    let status = Resource::new(move || (confirm.version().get(), disable.version().get(), regenerate.version().get()), |_| my_mfa_status());
    let next = local_next();
    let begin_error = last_error(begin);
    let disable_error = last_error(disable);
    let regenerate_error = last_error(regenerate);
    let new_codes = move || match (confirm.value().get(), regenerate.value().get()) {
        (_, Some(Ok(codes))) | (Some(Ok(codes)), _) => Some(codes),
        _ => None,
    };
    let enrolment = move || begin.value().get().and_then(Result::ok);
    view! {
        <PageTitle text="Security" />
        <header class="page-header">
            <div>
                <h1>"Security"</h1>
                <p class="muted">"How you sign in to Tessera."</p>
            </div>
        </header>
        <AccountNav />
        <ProblemNote />
        {move || new_codes().map(|codes| view! {
            <RecoveryCodes codes />
            {next.get().map(|next| view! { <a class="btn btn-primary" href=next data-testid="continue">"Continue"</a> })}
        })}
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(status) => match status.enabled_since.clone() {
                        None => view! {
                            <section class="card" aria-labelledby="mfa">
                                <h2 id="mfa">"Two-factor authentication"</h2>
                                <p data-testid="mfa-state">"Off. Add an authenticator app so a stolen password alone can't get into your account."</p>
                                {move || match enrolment() {
                                    Some(enrolment) => view! { <EnrolmentSteps enrolment confirm /> }.into_any(),
                                    None => view! {
                                        <ActionForm action=begin attr:class="inline-form">
                                            <FormAlert error=begin_error fields=&[] />
                                            <Submit label="Set up authenticator app" busy_label="Preparing…" pending=begin.pending() />
                                        </ActionForm>
                                    }
                                    .into_any(),
                                }}
                                <Show when=move || wants_reauth(begin_error.get())>
                                    <ReauthPrompt on_done=move |_| { begin.dispatch(BeginMfaEnrolment {}); } />
                                </Show>
                            </section>
                        }
                        .into_any(),
                        Some(since) => view! {
                            <section class="card" aria-labelledby="mfa">
                                <h2 id="mfa">"Two-factor authentication"</h2>
                                <p data-testid="mfa-state">
                                    "On since " <time datetime=since.clone()>{since.clone()}</time>
                                    ". You'll be asked for a code from your authenticator app when you sign in."
                                </p>
                                <p data-testid="recovery-codes-left">
                                    {format!("{} recovery codes left.", status.recovery_codes_left)}
                                </p>
                                <div class="button-row">
                                    <ActionForm action=regenerate attr:class="inline-form">
                                        <button type="submit" class="btn btn-ghost">"New recovery codes"</button>
                                    </ActionForm>
                                    <ActionForm action=disable attr:class="inline-form">
                                        <button type="submit" class="btn btn-danger" title="Your other devices will be signed out">
                                            "Turn off two-factor"
                                        </button>
                                    </ActionForm>
                                </div>
                                <p class="muted">"Turning it off signs out your other devices."</p>
                                <FormAlert error=Signal::derive(move || disable_error.get().or(regenerate_error.get())) fields=&[] />
                                <Show when=move || wants_reauth(regenerate_error.get())>
                                    <ReauthPrompt on_done=move |_| { regenerate.dispatch(RegenerateRecoveryCodes {}); } />
                                </Show>
                                <Show when=move || wants_reauth(disable_error.get())>
                                    <ReauthPrompt on_done=move |_| { disable.dispatch(DisableMfa {}); } />
                                </Show>
                            </section>
                        }
                        .into_any(),
                    },
                }
            })}
        </Suspense>
        <ConnectedAccounts />
        <RecentActivity />
    }
}

/// A message left by a sign-in or connect flow that ended in a redirect back here.
#[component]
pub fn ProblemNote() -> impl IntoView {
    let problem = Resource::new(|| (), |_| take_sign_in_problem());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                problem.await.ok().flatten().map(|message| view! {
                    <div class="alert alert-error" role="alert" data-testid="sign-in-problem">{message}</div>
                })
            })}
        </Suspense>
    }
}

/// Outside accounts (Google, Microsoft, …) that can sign in to this Tessera account.
#[component]
fn ConnectedAccounts() -> impl IntoView {
    let connect = ServerAction::<ConnectIdentity>::new();
    let disconnect = ServerAction::<DisconnectIdentity>::new();
    let identities = Resource::new(move || disconnect.version().get(), |_| my_identities());
    let providers = Resource::new(|| (), |_| sign_in_providers());
    let connect_error = last_error(connect);
    let disconnect_error = last_error(disconnect);
    // What to try again once the person has confirmed it's them.
    let retry = RwSignal::new(None::<String>);
    let retry_disconnect = RwSignal::new(None::<String>);
    // Off to the provider once the server has armed the connection.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(Ok(url)) = connect.value().get() {
            let _ = window().location().set_href(&url);
        }
    });
    let query = use_query_map();
    let connected = move || query.read().get("connected").is_some();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let providers = providers.await.unwrap_or_default();
                if providers.is_empty() {
                    return ().into_any();
                }
                let linked = identities.await.unwrap_or_default();
                let unlinked: Vec<_> = providers.into_iter().filter(|p| !linked.iter().any(|l| l.provider == p.id)).collect();
                view! {
                    <section class="card" aria-labelledby="connected">
                        <h2 id="connected">"Connected accounts"</h2>
                        <Show when=connected>
                            <p class="alert alert-info" role="status">"Connected. You can now sign in with it."</p>
                        </Show>
                        <FormAlert error=Signal::derive(move || connect_error.get().or(disconnect_error.get())) fields=&["provider"] />
                        <ul class="card-list" role="list">
                            {linked.into_iter().map(|identity| {
                                let id = identity.id.to_string();
                                view! {
                                <li class="session-row" data-testid="linked-identity">
                                    <div>
                                        <strong>{identity.provider_name.clone()}</strong>
                                        <p class="muted">{identity.email.clone().unwrap_or_default()} " · connected " {crate::date_of(&identity.linked_at)}</p>
                                    </div>
                                    <ActionForm action=disconnect attr:class="inline-form">
                                        <input type="hidden" name="id" value=id.clone() />
                                        <button type="submit" class="btn btn-ghost btn-sm" on:click=move |_| retry_disconnect.set(Some(id.clone()))>
                                            "Disconnect"
                                        </button>
                                    </ActionForm>
                                </li>
                            }}).collect_view()}
                        </ul>
                        <div class="button-row">
                            {unlinked.into_iter().map(|p| {
                                let label = format!("Connect {}", p.name);
                                let id = p.id.clone();
                                view! {
                                    <ActionForm action=connect attr:class="inline-form">
                                        <input type="hidden" name="provider" value=p.id.clone() />
                                        <button type="submit" class="btn btn-ghost" on:click=move |_| retry.set(Some(id.clone()))>{label}</button>
                                    </ActionForm>
                                }
                            }).collect_view()}
                        </div>
                        <Show when=move || wants_reauth(connect_error.get())>
                            <ReauthPrompt on_done=move |_| {
                                if let Some(provider) = retry.get_untracked() {
                                    connect.dispatch(ConnectIdentity { provider });
                                }
                            } />
                        </Show>
                        <Show when=move || wants_reauth(disconnect_error.get())>
                            <ReauthPrompt on_done=move |_| {
                                if let Some(id) = retry_disconnect.get_untracked() {
                                    disconnect.dispatch(DisconnectIdentity { id });
                                }
                            } />
                        </Show>
                    </section>
                }
                .into_any()
            })}
        </Suspense>
    }
}

#[component]
fn RecentActivity() -> impl IntoView {
    let activity = Resource::new(|| (), |_| my_account_activity());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                activity.await.ok().filter(|list| !list.is_empty()).map(|list| view! {
                    <section class="card" aria-labelledby="activity">
                        <h2 id="activity">"Recent activity"</h2>
                        <p class="muted">"If something here wasn't you, change your password and sign out your other sessions."</p>
                        <table class="table" data-testid="account-activity">
                            <tbody>
                                {list.into_iter().map(|e| view! {
                                    <tr>
                                        <td>{e.description.clone()}</td>
                                        <td class="muted">{e.ip.clone().unwrap_or_default()}</td>
                                        <td><time datetime=e.occurred_at.clone()>{e.occurred_at.replace('T', " ").trim_end_matches('Z').to_string()}</time></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                })
            })}
        </Suspense>
    }
}
