//! The access slice's pages: who has access to a project (on the project's page), restricting
//! it and sharing it with members and groups.

use crate::api::{SetProjectVisibility, ShareProject, UnshareProject};
use crate::components::form::{last_error, FormAlert, Submit};
use crate::pages::org::use_slug;
use leptos::prelude::*;
use tessera_domain::access::{ProjectRole, Visibility};
use tessera_domain::dto::{Grantee, Group, Member, ProjectAccess};

/// The actions the sharing panel submits, made with the page so the page's resources can
/// follow them (`version()`).
#[derive(Clone, Copy)]
pub struct SharingActions {
    pub share: ServerAction<ShareProject>,
    pub unshare: ServerAction<UnshareProject>,
    pub visibility: ServerAction<SetProjectVisibility>,
}

impl Default for SharingActions {
    fn default() -> Self {
        Self { share: ServerAction::new(), unshare: ServerAction::new(), visibility: ServerAction::new() }
    }
}

impl SharingActions {
    /// Changes whenever one of them was answered.
    pub fn version(&self) -> (usize, usize, usize) {
        (self.share.version().get(), self.unshare.version().get(), self.visibility.version().get())
    }
}

#[component]
fn ProjectRoleSelect(id: String, selected: ProjectRole) -> impl IntoView {
    view! {
        <select name="project_role" id=id class="input">
            {ProjectRole::ALL
                .into_iter()
                .rev()
                .map(|role| view! { <option value=role.as_str() selected=role == selected title=role.description()>{role.label()}</option> })
                .collect_view()}
        </select>
    }
}

/// Who has access to a project, and (for whoever may share it) the forms to change that.
/// `members` and `groups`: the organization's, to choose from.
#[component]
pub fn ProjectSharing(access: ProjectAccess, members: Vec<Member>, groups: Vec<Group>, actions: SharingActions) -> impl IntoView {
    let slug = use_slug();
    let project = access.project_id.to_string();
    let error = Signal::derive(move || {
        let share = last_error(actions.share).get();
        share.or_else(|| last_error(actions.unshare).get()).or_else(|| last_error(actions.visibility).get())
    });
    let restricted = access.visibility == Visibility::Restricted;
    let explanation = if restricted {
        "Restricted: only the people and groups below see this project, and the organization's Owners and Admins."
    } else {
        "Open: everyone in the organization sees this project, with what their role allows. The people and groups below get more than that here."
    };
    let granted: Vec<String> = access.grants.iter().map(|g| g.grantee.key()).collect();
    let candidates: Vec<(String, String)> = members
        .iter()
        .map(|m| (format!("user:{}", m.user_id), format!("{} ({})", m.display_name.clone().unwrap_or_else(|| m.email.clone()), m.email)))
        .chain(groups.iter().map(|g| (format!("group:{}", g.id), format!("Group: {} ({} members)", g.name, g.members.len()))))
        .filter(|(key, _)| !granted.contains(key))
        .collect();
    let can_share = access.can_share;
    let rows = access
        .grants
        .into_iter()
        .map(|grant| {
            let (who, detail) = match &grant.grantee {
                Grantee::Member { name, email, .. } => (name.clone(), email.clone()),
                Grantee::Group { name, members, .. } => {
                    (name.clone(), format!("Group of {members} {}", if *members == 1 { "member" } else { "members" }))
                }
            };
            let key = grant.grantee.key();
            let role_id = format!("grant-role-{}", grant.id);
            let (role_label, remove_label) = (format!("Role of {who}"), format!("Remove {who}'s access"));
            let role = if can_share {
                let project = project.clone();
                view! {
                    <ActionForm action=actions.share attr:class="inline-form">
                        <input type="hidden" name="slug" value=move || slug.get() />
                        <input type="hidden" name="id" value=project />
                        <input type="hidden" name="grantee" value=key />
                        <label class="sr-only" for=role_id.clone()>{role_label}</label>
                        <ProjectRoleSelect id=role_id selected=grant.role />
                        <button type="submit" class="btn">"Change"</button>
                    </ActionForm>
                }
                .into_any()
            } else {
                view! { <span class="badge">{grant.role.label()}</span> }.into_any()
            };
            let remove = can_share.then(|| {
                let project = project.clone();
                view! {
                    <ActionForm action=actions.unshare attr:class="inline-form">
                        <input type="hidden" name="slug" value=move || slug.get() />
                        <input type="hidden" name="id" value=project />
                        <input type="hidden" name="grant" value=grant.id.to_string() />
                        <button type="submit" class="btn btn-danger" aria-label=remove_label>"Remove"</button>
                    </ActionForm>
                }
            });
            view! {
                <tr data-testid="grant-row">
                    <td>
                        <strong>{who}</strong>
                        <br />
                        <span class="muted">{detail}</span>
                    </td>
                    <td>{role}</td>
                    {can_share.then(|| view! { <td>{remove}</td> })}
                </tr>
            }
        })
        .collect_view();
    let nobody = granted.is_empty();
    view! {
        <section class="card" aria-labelledby="access-heading" data-testid="project-access">
            <h2 id="access-heading">"Who has access"</h2>
            <p data-testid="visibility">
                <span class="badge">{if restricted { "Restricted" } else { "Everyone in the organization" }}</span>
                " "
                {explanation}
            </p>
            <FormAlert error fields=&[] />
            {can_share.then(|| {
                let project = project.clone();
                view! {
                    <ActionForm action=actions.visibility attr:class="inline-form">
                        <input type="hidden" name="slug" value=move || slug.get() />
                        <input type="hidden" name="id" value=project />
                        <label for="project-visibility">"Who can see it"</label>
                        <select name="visibility" id="project-visibility" class="input">
                            <option value=Visibility::Organization.as_str() selected=!restricted>"Everyone in the organization"</option>
                            <option value=Visibility::Restricted.as_str() selected=restricted>"Only people and groups given access"</option>
                        </select>
                        <Submit label="Save" busy_label="Saving…" pending=actions.visibility.pending() />
                    </ActionForm>
                }
            })}
            {if nobody {
                view! { <p class="muted">"Nobody has been given access to this project in particular."</p> }.into_any()
            } else {
                view! {
                    <table class="table">
                        <thead>
                            <tr>
                                <th scope="col">"Who"</th>
                                <th scope="col">"Project role"</th>
                                {can_share.then(|| view! { <th scope="col">"Access"</th> })}
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                }
                    .into_any()
            }}
            {(can_share && !candidates.is_empty()).then(|| {
                let project = project.clone();
                view! {
                    <ActionForm action=actions.share attr:class="form share-form">
                        <h3>"Give access"</h3>
                        <input type="hidden" name="slug" value=move || slug.get() />
                        <input type="hidden" name="id" value=project />
                        <div class="field">
                            <label for="share-grantee">"Member or group"</label>
                            <select name="grantee" id="share-grantee" class="input">
                                {candidates.into_iter().map(|(key, label)| view! { <option value=key>{label}</option> }).collect_view()}
                            </select>
                        </div>
                        <div class="field">
                            <label for="share-role">"Project role"</label>
                            <ProjectRoleSelect id="share-role".to_string() selected=ProjectRole::Editor />
                            <p class="field-hint">"Viewers read; editors also write and change any document; project admins also rename, delete and share the project."</p>
                        </div>
                        <Submit label="Give access" busy_label="Giving access…" pending=actions.share.pending() />
                    </ActionForm>
                }
            })}
        </section>
    }
}
