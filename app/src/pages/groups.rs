//! Groups: members named together, so a project can be shared with all of them at once.
//! Everyone sees them; Owners and Admins make them and choose who is in them (or let the
//! identity provider choose, for a group that mirrors one of its groups).

use crate::api::{list_groups, list_members, AddGroupMember, CreateGroup, DeleteGroup, RemoveGroupMember, UpdateGroup};
use crate::components::form::{last_error, ConfirmDelete, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use crate::pages::org::{use_slug, CurrentOrg};
use leptos::prelude::*;
use tessera_domain::dto::{Group, Member};
use tessera_domain::input::{GroupDescription, GroupName};
use tessera_domain::Permission;

fn check_name(s: &str) -> Option<String> {
    GroupName::parse(s).err().map(|e| e.message)
}

fn check_description(s: &str) -> Option<String> {
    GroupDescription::parse(s).err().map(|e| e.message)
}

#[derive(Clone, Copy)]
struct GroupActions {
    update: ServerAction<UpdateGroup>,
    delete: ServerAction<DeleteGroup>,
    add: ServerAction<AddGroupMember>,
    remove: ServerAction<RemoveGroupMember>,
}

#[component]
pub fn GroupsPage() -> impl IntoView {
    let slug = use_slug();
    let CurrentOrg(org) = expect_context::<CurrentOrg>();
    let create = ServerAction::<CreateGroup>::new();
    let actions = GroupActions { update: ServerAction::new(), delete: ServerAction::new(), add: ServerAction::new(), remove: ServerAction::new() };
    let groups = Resource::new(
        move || {
            (
                slug.get(),
                create.version().get(),
                actions.update.version().get(),
                actions.delete.version().get(),
                actions.add.version().get(),
                actions.remove.version().get(),
            )
        },
        |(slug, ..)| list_groups(slug),
    );
    let members = Resource::new(move || slug.get(), list_members);
    let create_error = last_error(create);
    view! {
        <PageTitle text="Groups" />
        <header class="page-header">
            <h1>"Groups"</h1>
        </header>
        <p class="muted">
            "Name members together (a team, the contractors) and share restricted projects with all of them at once. Someone who leaves a group loses what it gave them."
        </p>
        <Suspense fallback=|| view! { <p class="loading">"Loading groups…"</p> }>
            {move || Suspend::new(async move {
                let can_manage = org.await.map(|o| o.rights.can(Permission::ManageGroups)).unwrap_or(false);
                let people = members.await.unwrap_or_default();
                match groups.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(list) => {
                        let cards = if list.is_empty() {
                            view! {
                                <div class="empty-state card">
                                    <h2>"No groups yet"</h2>
                                    <p>{if can_manage { "Make the first one below." } else { "When an admin makes groups, they'll show up here." }}</p>
                                </div>
                            }
                                .into_any()
                        } else {
                            list.into_iter()
                                .map(|group| view! { <GroupCard group people=people.clone() can_manage actions /> })
                                .collect_view()
                                .into_any()
                        };
                        view! {
                            {cards}
                            {can_manage.then(|| view! {
                                <section class="card form-card">
                                    <h2>"New group"</h2>
                                    <ActionForm action=create attr:class="form" attr:novalidate=true>
                                        <FormAlert error=create_error fields=&["name", "description", "idp_group"] />
                                        <input type="hidden" name="slug" value=move || slug.get() />
                                        <Field label="Group name" name="name" required=true error=create_error check=check_name />
                                        <Field label="Description" name="description" error=create_error check=check_description hint="Optional. Who is in it, or what for." />
                                        <Field
                                            label="Identity provider group"
                                            name="idp_group"
                                            error=create_error
                                            hint="Optional. The name of a group in your SAML identity provider, exactly as it sends it: members are then set at each single sign-on, not by hand."
                                        />
                                        <Submit label="Create group" busy_label="Creating…" pending=create.pending() />
                                    </ActionForm>
                                </section>
                            })}
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn GroupCard(group: Group, people: Vec<Member>, can_manage: bool, actions: GroupActions) -> impl IntoView {
    let slug = use_slug();
    let id = group.id.to_string();
    let by_hand = can_manage && group.idp_group.is_none();
    let error = Signal::derive(move || {
        let update = last_error(actions.update).get();
        update.or_else(|| last_error(actions.add).get()).or_else(|| last_error(actions.remove).get()).or_else(|| last_error(actions.delete).get())
    });
    let inside: Vec<uuid::Uuid> = group.members.iter().map(|m| m.user_id).collect();
    let addable: Vec<Member> = people.into_iter().filter(|m| !inside.contains(&m.user_id)).collect();
    let heading = format!("group-{}", group.id);
    let group_name = group.name.clone();
    let members = if group.members.is_empty() {
        view! { <p class="muted">"Nobody is in this group yet."</p> }.into_any()
    } else {
        let items = group
            .members
            .clone()
            .into_iter()
            .map(|m| {
                let remove = by_hand.then(|| {
                    let id = id.clone();
                    let label = format!("Take {} out of {}", m.name, group_name);
                    view! {
                        <ActionForm action=actions.remove attr:class="inline-form">
                            <input type="hidden" name="slug" value=move || slug.get() />
                            <input type="hidden" name="group" value=id />
                            <input type="hidden" name="user_id" value=m.user_id.to_string() />
                            <button type="submit" class="btn btn-danger" aria-label=label>"Remove"</button>
                        </ActionForm>
                    }
                });
                view! {
                    <li data-testid="group-member">
                        <span>{m.name} " " <span class="muted">{m.email}</span></span>
                        {remove}
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="plain-list">{items}</ul> }.into_any()
    };
    let projects = match group.projects {
        0 => "No projects shared with it yet.".to_string(),
        1 => "Has access to 1 project.".to_string(),
        n => format!("Has access to {n} projects."),
    };
    view! {
        <section class="card" aria-labelledby=heading.clone() data-testid="group">
            <h2 id=heading.clone()>{group.name.clone()}</h2>
            {(!group.description.is_empty()).then(|| view! { <p class="written-text">{group.description.clone()}</p> })}
            {group.idp_group.clone().map(|idp| view! {
                <p><span class="badge">"From your identity provider"</span> " Mirrors " <code>{idp}</code> ": members change at their next single sign-on."</p>
            })}
            <p class="muted">{projects}</p>
            <FormAlert error fields=&[] />
            {members}
            {(by_hand && !addable.is_empty()).then(|| {
                let field = format!("add-to-{}", group.id);
                let id = id.clone();
                view! {
                    <ActionForm action=actions.add attr:class="inline-form">
                        <input type="hidden" name="slug" value=move || slug.get() />
                        <input type="hidden" name="group" value=id />
                        <label for=field.clone()>"Add a member"</label>
                        <select name="user_id" id=field class="input">
                            {addable
                                .into_iter()
                                .map(|m| view! { <option value=m.user_id.to_string()>{format!("{} ({})", m.display_name.clone().unwrap_or_else(|| m.email.clone()), m.email)}</option> })
                                .collect_view()}
                        </select>
                        <button type="submit" class="btn">"Add"</button>
                    </ActionForm>
                }
            })}
            {can_manage.then(|| {
                let (name_id, description_id, idp_id) = (format!("name-{}", group.id), format!("description-{}", group.id), format!("idp-{}", group.id));
                let (edit_id, delete_id) = (id.clone(), id.clone());
                let (name_value, deleted_name) = (group.name.clone(), group.name.clone());
                let (description_value, idp_value) = (group.description.clone(), group.idp_group.clone().unwrap_or_default());
                view! {
                    <div class="item-actions">
                        <details>
                            <summary class="btn">"Edit…"</summary>
                            <ActionForm action=actions.update attr:class="form">
                                <input type="hidden" name="slug" value=move || slug.get() />
                                <input type="hidden" name="group" value=edit_id />
                                <div class="field">
                                    <label for=name_id.clone()>"Group name"</label>
                                    <input id=name_id name="name" class="input" value=name_value required=true />
                                </div>
                                <div class="field">
                                    <label for=description_id.clone()>"Description"</label>
                                    <input id=description_id name="description" class="input" value=description_value />
                                </div>
                                <div class="field">
                                    <label for=idp_id.clone()>"Identity provider group"</label>
                                    <input id=idp_id name="idp_group" class="input" value=idp_value />
                                </div>
                                <Submit label="Save group" busy_label="Saving…" pending=actions.update.pending() />
                            </ActionForm>
                        </details>
                        <ConfirmDelete summary="Delete…" open=Signal::derive(|| false)>
                            <ActionForm action=actions.delete attr:class="form">
                                <p>
                                    "Delete " <strong>{deleted_name}</strong>
                                    "? Its members stay in the organization, but lose the access it gave them to restricted projects."
                                </p>
                                <input type="hidden" name="slug" value=move || slug.get() />
                                <input type="hidden" name="group" value=delete_id />
                                <Submit label="Delete group" busy_label="Deleting…" pending=actions.delete.pending() danger=true />
                            </ActionForm>
                        </ConfirmDelete>
                    </div>
                }
            })}
        </section>
    }
}
