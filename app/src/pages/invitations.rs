//! The page an invitation email links to (`/invite?token=…`), and the invitations card on the
//! home page.

use crate::api::{my_session, open_invitation, AcceptInvitation, DeclineInvitation, LogOut};
use crate::components::form::{last_error, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use tessera_domain::dto::{InvitationPreview, InvitationState};
use tessera_domain::Role;

fn with_article(role: Role) -> String {
    let article = if role == Role::Admin || role == Role::Owner { "an" } else { "a" };
    format!("{article} {}", role.label())
}

/// "Ana (ana@acme.test) invited you to join Acme as a Member."
fn invited_line(invitation: &InvitationPreview) -> String {
    let who = invitation.inviter.clone().unwrap_or_else(|| "Someone".into());
    format!("{who} invited you to join {} as {}.", invitation.organization, with_article(invitation.role))
}

#[component]
pub fn InvitationPage() -> impl IntoView {
    let query = use_query_map();
    let token = Memo::new(move |_| query.read().get("token").unwrap_or_default());
    let accept = ServerAction::<AcceptInvitation>::new();
    let decline = ServerAction::<DeclineInvitation>::new();
    let logout = ServerAction::<LogOut>::new();
    let invitation = Resource::new(move || (token.get(), decline.version().get()), |(token, _)| open_invitation(token));
    let session = Resource::new(move || logout.version().get(), |_| my_session());
    let error = Signal::derive(move || last_error(accept).get().or_else(|| last_error(decline).get()));
    view! {
        <PageTitle text="Invitation" />
        <section class="auth-card card invitation" data-testid="invitation">
            <Suspense fallback=|| view! { <p class="loading">"Opening the invitation…"</p> }>
                {move || Suspend::new(async move {
                    let invitation = match invitation.await {
                        Ok(invitation) => invitation,
                        Err(error) => {
                            return view! {
                                <h1>"Invitation not found"</h1>
                                <p role="alert">{error.to_string()}</p>
                                <a class="btn btn-ghost" href="/">"Go to Tessera"</a>
                            }
                            .into_any()
                        }
                    };
                    let me = session.await.ok().flatten().map(|s| s.user);
                    let heading = format!("Join {}", invitation.organization);
                    let body = match invitation.state {
                        InvitationState::Accepted => view! {
                            <p data-testid="invitation-state">"This invitation has been accepted."</p>
                            <a class="btn btn-primary" href=format!("/t/{}", invitation.slug)>{format!("Go to {}", invitation.organization)}</a>
                        }
                        .into_any(),
                        InvitationState::Declined => view! {
                            <p data-testid="invitation-state">{format!("You declined this invitation. If you change your mind, ask {} for a new one.", invitation.organization)}</p>
                        }
                        .into_any(),
                        InvitationState::Withdrawn => view! {
                            <p data-testid="invitation-state">{format!("{} withdrew this invitation.", invitation.organization)}</p>
                        }
                        .into_any(),
                        InvitationState::Expired => view! {
                            <p data-testid="invitation-state">
                                {format!("This invitation expired on {}. Ask whoever invited you to send it again.", crate::date_of(&invitation.expires_at))}
                            </p>
                        }
                        .into_any(),
                        InvitationState::Pending => {
                            let here = format!("/invite?token={}", crate::query_escape(&token.get_untracked()));
                            let answer = match me {
                                Some(me) if me.email.eq_ignore_ascii_case(&invitation.email) => view! {
                                    <div class="button-row">
                                        <ActionForm action=accept attr:class="inline-form">
                                            <input type="hidden" name="token" value=token.get_untracked() />
                                            <Submit label="Accept and join" busy_label="Joining…" pending=accept.pending() />
                                        </ActionForm>
                                        <ActionForm action=decline attr:class="inline-form">
                                            <input type="hidden" name="token" value=token.get_untracked() />
                                            <button type="submit" class="btn btn-ghost">"Decline"</button>
                                        </ActionForm>
                                    </div>
                                }
                                .into_any(),
                                Some(me) => view! {
                                    <p class="alert alert-error" role="alert" data-testid="wrong-account">
                                        {format!(
                                            "This invitation is for {}, but you're signed in as {}. Log out, then sign in (or create an account) with {}.",
                                            invitation.email, me.email, invitation.email
                                        )}
                                    </p>
                                    <ActionForm action=logout attr:class="inline-form">
                                        <button type="submit" class="btn btn-primary">"Log out"</button>
                                    </ActionForm>
                                }
                                .into_any(),
                                None => {
                                    let login = format!("/login?next={}", crate::query_escape(&here));
                                    let signup = format!(
                                        "/signup?email={}&invitation={}&next={}",
                                        crate::query_escape(&invitation.email),
                                        crate::query_escape(&token.get_untracked()),
                                        crate::query_escape(&here)
                                    );
                                    view! {
                                        <p class="muted">{format!("To accept, sign in or create an account with {}.", invitation.email)}</p>
                                        <div class="button-row">
                                            <a class="btn btn-primary" href=login>"Sign in to accept"</a>
                                            <a class="btn btn-ghost" href=signup>"Create an account"</a>
                                        </div>
                                        <ActionForm action=decline>
                                            <input type="hidden" name="token" value=token.get_untracked() />
                                            <span class="muted">"Not for you? "</span>
                                            <button type="submit" class="btn btn-link">"Decline the invitation"</button>
                                        </ActionForm>
                                    }
                                    .into_any()
                                }
                            };
                            view! {
                                <p class="muted">{format!("It works until {}.", crate::date_of(&invitation.expires_at))}</p>
                                {answer}
                            }
                            .into_any()
                        }
                    };
                    view! {
                        <h1>{heading}</h1>
                        <p class="lead" data-testid="invited-line">{invited_line(&invitation)}</p>
                        <FormAlert error fields=&[] />
                        {body}
                    }
                    .into_any()
                })}
            </Suspense>
        </section>
    }
}

/// Invitations waiting for the signed-in person (by their confirmed address), on the home
/// page. The page owns the resource and actions: created outside any Suspense, and declining
/// refreshes the list.
#[component]
pub fn InvitationsCard(
    invitations: Resource<Result<Vec<InvitationPreview>, tessera_domain::AppError>>,
    accept: ServerAction<AcceptInvitation>,
    decline: ServerAction<DeclineInvitation>,
) -> impl IntoView {
    let error = Signal::derive(move || last_error(accept).get().or_else(|| last_error(decline).get()));
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let list = invitations.await.unwrap_or_default();
                if list.is_empty() {
                    return ().into_any();
                }
                view! {
                    <section class="card" aria-labelledby="invitations-title" data-testid="my-invitations">
                        <h2 id="invitations-title">"Invitations"</h2>
                        <FormAlert error fields=&[] />
                        <ul class="card-list" role="list">
                            {list.into_iter().map(|invitation| {
                                let (id_a, id_b) = (invitation.id.to_string(), invitation.id.to_string());
                                view! {
                                    <li class="session-row" data-testid="invitation-for-me">
                                        <div>
                                            <strong>{invitation.organization.clone()}</strong>
                                            <p class="muted">{invited_line(&invitation)}</p>
                                        </div>
                                        <div class="button-row">
                                            <ActionForm action=accept attr:class="inline-form">
                                                <input type="hidden" name="id" value=id_a />
                                                <button type="submit" class="btn btn-primary btn-sm">"Accept"</button>
                                            </ActionForm>
                                            <ActionForm action=decline attr:class="inline-form">
                                                <input type="hidden" name="id" value=id_b />
                                                <button type="submit" class="btn btn-ghost btn-sm">"Decline"</button>
                                            </ActionForm>
                                        </div>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    </section>
                }
                .into_any()
            })}
        </Suspense>
    }
}
