use crate::api::{
    list_members, list_roles, org_invitations, ChangeRole, InviteMember, LeaveOrganization, RemoveMember, ResendInvitation, SignOutMember,
    TransferOwnership, WithdrawInvitation,
};
use crate::components::form::{last_error, ConfirmDelete, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::components::reauth::ReauthWhenAsked;
use crate::pages::not_found::ErrorPage;
use crate::pages::org::{use_slug, CurrentOrg};
use leptos::prelude::*;
use tessera_domain::{AppError, CustomRole, Permission, Rights, Role};

#[component]
fn RoleSelect(name: &'static str, selected: Role, allowed: Vec<Role>, #[prop(optional)] id: Option<String>) -> impl IntoView {
    let options = allowed.into_iter().map(|role| (role.as_str().to_string(), role.label().to_string())).collect();
    view! { <RoleChoiceSelect name selected=selected.as_str().to_string() options id=id.unwrap_or_default() /> }
}

/// A role picker over `options` (`(value, label)`: `admin`, or `custom:<id>` for the
/// organization's own roles).
#[component]
fn RoleChoiceSelect(name: &'static str, selected: String, options: Vec<(String, String)>, id: String) -> impl IntoView {
    view! {
        <select name=name id=id class="input">
            {options
                .into_iter()
                .map(|(value, label)| {
                    let chosen = value == selected;
                    view! { <option value=value selected=chosen>{label}</option> }
                })
                .collect_view()}
        </select>
    }
}

#[component]
pub fn MembersPage() -> impl IntoView {
    let slug = use_slug();
    let CurrentOrg(org) = expect_context::<CurrentOrg>();
    let invite = ServerAction::<InviteMember>::new();
    let resend = ServerAction::<ResendInvitation>::new();
    let withdraw = ServerAction::<WithdrawInvitation>::new();
    let change = ServerAction::<ChangeRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let sign_out = ServerAction::<SignOutMember>::new();
    let transfer = ServerAction::<TransferOwnership>::new();
    let leave = ServerAction::<LeaveOrganization>::new();
    let members = Resource::new(
        move || (slug.get(), change.version().get(), remove.version().get(), transfer.version().get()),
        |(slug, ..)| list_members(slug),
    );
    // Only Owners and Admins may see invitations; for others this is a 403 the page ignores.
    let invitations = Resource::new(
        move || (slug.get(), invite.version().get(), resend.version().get(), withdraw.version().get()),
        |(slug, ..)| org_invitations(slug),
    );
    let roles = Resource::new(move || slug.get(), list_roles);
    let invite_error = last_error(invite);
    let row_error = Signal::derive(move || {
        let change_err = last_error(change).get();
        change_err.or_else(|| last_error(remove).get()).or_else(|| last_error(sign_out).get())
    });
    view! {
        <PageTitle text="Members" />
        <header class="page-header">
            <h1>"Members"</h1>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading members…"</p> }>
            {move || Suspend::new(async move {
                let my_rights = org.await.map(|o| o.rights).unwrap_or(Rights::BuiltIn(Role::Viewer));
                let my_role = my_rights.built_in().unwrap_or(Role::Viewer);
                let can_manage = my_rights.can(Permission::ManageMembers);
                let assignable: Vec<Role> = Role::ALL.into_iter().filter(|r| my_rights.may_assign(&Rights::BuiltIn(*r))).collect();
                // The organization's own roles, as rights, to offer those within the viewer's own.
                let custom: Vec<Rights> = roles
                    .await
                    .map(|overview| {
                        overview
                            .custom
                            .into_iter()
                            .map(|r| Rights::Custom(CustomRole { id: r.id, name: r.name, permissions: r.permissions }))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut options: Vec<(String, String)> = assignable.iter().map(|r| (r.as_str().to_string(), r.label().to_string())).collect();
                for rights in custom.iter().filter(|r| my_rights.may_assign(r)) {
                    if let Rights::Custom(role) = rights {
                        options.push((format!("custom:{}", role.id), role.name.clone()));
                    }
                }
                let rights_of = |m: &tessera_domain::dto::Member| match &m.custom_role {
                    None => Some(Rights::BuiltIn(m.role)),
                    Some(held) => custom.iter().find(|r| matches!(r, Rights::Custom(c) if c.id == held.id)).cloned(),
                };
                let list = match members.await {
                    Ok(list) => list,
                    Err(error) => return view! { <ErrorPage error /> }.into_any(),
                };
                // Who ownership can go to: everyone but the Owners (the signed-in Owner among them).
                let successors: Vec<tessera_domain::dto::Member> = list.iter().filter(|m| m.role != Role::Owner).cloned().collect();
                let others_own = list.iter().filter(|m| m.role == Role::Owner).count() > 1;
                view! {
                    <FormAlert error=row_error fields=&[] />
                    <table class="table" data-testid="members">
                        <thead>
                            <tr>
                                <th scope="col">"Member"</th>
                                <th scope="col">"Role"</th>
                                {can_manage.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                            </tr>
                        </thead>
                        <tbody>
                            {list
                                .into_iter()
                                .map(|m| {
                                    let options = options.clone();
                                    let editable = can_manage && rights_of(&m).is_some_and(|r| my_rights.may_assign(&r));
                                    let user_id = m.user_id.to_string();
                                    let select_id = format!("role-{user_id}");
                                    view! {
                                        <tr data-testid="member-row">
                                            <td>
                                                <strong>{m.display_name.clone().unwrap_or_else(|| m.email.clone())}</strong>
                                                <br />
                                                <span class="muted">{m.email.clone()}</span>
                                            </td>
                                            <td>
                                                {if editable {
                                                    let (slug_value, uid) = (slug.get_untracked(), user_id.clone());
                                                    view! {
                                                        <ActionForm action=change attr:class="inline-form">
                                                            <input type="hidden" name="slug" value=slug_value />
                                                            <input type="hidden" name="user_id" value=uid />
                                                            <label class="sr-only" for=select_id.clone()>{format!("Role of {}", m.email)}</label>
                                                            <RoleChoiceSelect name="role" selected=m.role_key() options id=select_id.clone() />
                                                            <button type="submit" class="btn btn-ghost btn-sm">"Save"</button>
                                                        </ActionForm>
                                                    }
                                                        .into_any()
                                                } else {
                                                    let custom = m.custom_role.is_some().then_some(" (custom role)");
                                                    view! { <span class="badge">{m.role_label().to_string()}{custom}</span> }.into_any()
                                                }}
                                            </td>
                                            {can_manage.then(|| {
                                                let (slug_value, uid) = (slug.get_untracked(), user_id.clone());
                                                view! {
                                                    <td class="actions">
                                                        {editable.then(|| {
                                                            let (slug_a, uid_a) = (slug_value.clone(), uid.clone());
                                                            let (slug_b, uid_b) = (slug_value.clone(), uid.clone());
                                                            view! {
                                                            <ActionForm action=sign_out attr:class="inline-form">
                                                                <input type="hidden" name="slug" value=slug_a />
                                                                <input type="hidden" name="user_id" value=uid_a />
                                                                <button type="submit" class="btn btn-ghost btn-sm" title="End all of their sessions, on every device">
                                                                    "Sign out everywhere"
                                                                </button>
                                                            </ActionForm>
                                                            <ActionForm action=remove attr:class="inline-form">
                                                                <input type="hidden" name="slug" value=slug_b />
                                                                <input type="hidden" name="user_id" value=uid_b />
                                                                <button type="submit" class="btn btn-danger btn-sm">"Remove"</button>
                                                            </ActionForm>
                                                            }
                                                        })}
                                                    </td>
                                                }
                                            })}
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                    {can_manage.then(|| view! {
                        <InviteForm action=invite error=invite_error assignable=assignable.clone() />
                        <PendingInvitations invitations resend withdraw my_role />
                    })}
                    <YourMembership my_role successors others_own transfer leave />
                }
                    .into_any()
            })}
        </Suspense>
    }
}

#[component]
fn InviteForm(action: ServerAction<InviteMember>, error: Signal<Option<AppError>>, assignable: Vec<Role>) -> impl IntoView {
    let slug = use_slug();
    let sent = move || action.value().get().and_then(Result::ok);
    view! {
        <section class="card form-card" aria-labelledby="invite-title">
            <h2 id="invite-title">"Invite someone"</h2>
            <p class="muted">"We email them a link. They join when they accept; if they don't have an account yet, they create one on the way."</p>
            {move || sent().map(|invitation| view! {
                <p class="alert alert-info" role="status" data-testid="invitation-sent">
                    {format!("Invitation sent to {}. It works until {}.", invitation.email, crate::date_of(&invitation.expires_at))}
                </p>
            })}
            <ActionForm action attr:class="form form-row" attr:novalidate=true>
                <FormAlert error fields=&["email", "role"] />
                <input type="hidden" name="slug" value=move || slug.get() />
                <Field label="Email" name="email" kind="email" required=true error />
                <div class="field">
                    <label for="invite-role">"Role"</label>
                    <RoleSelect name="role" selected=Role::Member allowed=assignable id="invite-role".to_string() />
                </div>
                <Submit label="Send invitation" busy_label="Sending…" pending=action.pending() />
            </ActionForm>
        </section>
    }
}

#[component]
fn PendingInvitations(
    invitations: Resource<Result<Vec<tessera_domain::dto::Invitation>, AppError>>,
    resend: ServerAction<ResendInvitation>,
    withdraw: ServerAction<WithdrawInvitation>,
    my_role: Role,
) -> impl IntoView {
    let slug = use_slug();
    let error = Signal::derive(move || last_error(resend).get().or_else(|| last_error(withdraw).get()));
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let list = invitations.await.unwrap_or_default();
                if list.is_empty() {
                    return ().into_any();
                }
                view! {
                    <section class="card" aria-labelledby="pending-title">
                        <h2 id="pending-title">"Pending invitations"</h2>
                        <FormAlert error fields=&[] />
                        <ul class="card-list" role="list">
                            {list.into_iter().map(|invitation| {
                                let id = invitation.id.to_string();
                                let (slug_a, id_a) = (slug.get_untracked(), id.clone());
                                let (slug_b, id_b) = (slug.get_untracked(), id);
                                let manageable = my_role.may_assign(invitation.role);
                                let by = invitation.invited_by.clone().map(|b| format!(" by {b}")).unwrap_or_default();
                                let when = if invitation.expired {
                                    format!("Sent{by} on {}; expired {}", crate::date_of(&invitation.sent_at), crate::date_of(&invitation.expires_at))
                                } else {
                                    format!("Sent{by} on {}; works until {}", crate::date_of(&invitation.sent_at), crate::date_of(&invitation.expires_at))
                                };
                                view! {
                                    <li class="session-row" data-testid="invitation-row">
                                        <div>
                                            <strong>{invitation.email.clone()}</strong> " "
                                            <span class="badge">{invitation.role.label()}</span>
                                            {invitation.expired.then(|| view! { " " <span class="badge badge-warning">"Expired"</span> })}
                                            <p class="muted">{when}</p>
                                        </div>
                                        {manageable.then(|| view! {
                                            <div class="button-row">
                                                <ActionForm action=resend attr:class="inline-form">
                                                    <input type="hidden" name="slug" value=slug_a />
                                                    <input type="hidden" name="id" value=id_a />
                                                    <button type="submit" class="btn btn-ghost btn-sm">"Resend"</button>
                                                </ActionForm>
                                                <ActionForm action=withdraw attr:class="inline-form">
                                                    <input type="hidden" name="slug" value=slug_b />
                                                    <input type="hidden" name="id" value=id_b />
                                                    <button type="submit" class="btn btn-danger btn-sm">"Withdraw"</button>
                                                </ActionForm>
                                            </div>
                                        })}
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

/// The signed-in member's own membership: an Owner hands ownership over (after confirming it's
/// them); anyone leaves (the only Owner is told why not).
#[component]
fn YourMembership(
    my_role: Role,
    successors: Vec<tessera_domain::dto::Member>,
    /// Whether someone besides the signed-in Owner is an Owner too.
    others_own: bool,
    transfer: ServerAction<TransferOwnership>,
    leave: ServerAction<LeaveOrganization>,
) -> impl IntoView {
    let slug = use_slug();
    let transfer_error = last_error(transfer);
    let leave_error = last_error(leave);
    // Roles changed (theirs and the page's own): load the page again, so every control on it
    // (and in the navigation) is the one an Admin gets.
    Effect::new(move |_| {
        if transfer.value().get().is_some_and(|r| r.is_ok()) {
            let _ = window().location().reload();
        }
    });
    let only_owner = my_role == Role::Owner && !others_own;
    view! {
        <section class="card form-card" aria-labelledby="membership-title">
            <h2 id="membership-title">"Your membership"</h2>
            {(my_role == Role::Owner && !successors.is_empty()).then(|| view! {
                <ConfirmDelete summary="Hand ownership over…" open=Signal::derive(move || transfer_error.get().is_some())>
                <ActionForm action=transfer attr:class="form">
                    <FormAlert error=transfer_error fields=&["user_id"] />
                    <input type="hidden" name="slug" value=move || slug.get() />
                    <div class="field" class:field-invalid=move || transfer_error.get().is_some_and(|e| e.field() == Some("user_id"))>
                        <label for="transfer-to">"Hand ownership to"</label>
                        <select id="transfer-to" name="user_id" class="input" required=true aria-describedby="transfer-hint transfer-error">
                            <option value="" selected=true disabled=true>"Choose a member"</option>
                            {successors
                                .into_iter()
                                .map(|m| {
                                    let name = m.display_name.clone().unwrap_or_else(|| m.email.clone());
                                    view! { <option value=m.user_id.to_string()>{format!("{name} ({})", m.role_label())}</option> }
                                })
                                .collect_view()}
                        </select>
                        <p class="hint" id="transfer-hint">"They become an Owner; you stay on as an Admin. You'll be asked to confirm it's you."</p>
                        <p class="field-error" id="transfer-error" role="alert">{move || transfer_error.get().filter(|e| e.field() == Some("user_id")).map(|e| e.to_string())}</p>
                    </div>
                    <Submit label="Hand ownership over" busy_label="Handing over…" pending=transfer.pending() danger=true />
                </ActionForm>
                </ConfirmDelete>
                <ReauthWhenAsked error=transfer_error again="Hand ownership over" />
            })}
            {if only_owner {
                view! { <p class="muted">"You're the only Owner, so you can't leave: hand ownership over first, or delete the organization."</p> }.into_any()
            } else {
                view! {
                    <ConfirmDelete summary="Leave organization…" open=Signal::derive(move || leave_error.get().is_some())>
                        <ActionForm action=leave attr:class="form">
                            <FormAlert error=leave_error fields=&[] />
                            <input type="hidden" name="slug" value=move || slug.get() />
                            <p>"Leave this organization? You lose access at once, and the API keys you made here are revoked. To come back, you need a new invitation."</p>
                            <Submit label="Leave organization" busy_label="Leaving…" pending=leave.pending() danger=true />
                        </ActionForm>
                    </ConfirmDelete>
                }
                    .into_any()
            }}
        </section>
    }
}
