//! Roles: what each built-in role may do, and the organization's own roles, made from a
//! checklist of the permission catalogue. Whoever may define roles can't give one a right they
//! don't have (the server refuses it; the checklist only offers what they have).

use crate::api::{list_roles, CreateRole, DeleteRole, UpdateRole};
use crate::components::form::{last_error, ConfirmDelete, Field, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use crate::pages::org::{use_slug, CurrentOrg};
use leptos::prelude::*;
use tessera_domain::dto::CustomRoleInfo;
use tessera_domain::{Permission, Rights, Role};

#[component]
pub fn RolesPage() -> impl IntoView {
    let slug = use_slug();
    let CurrentOrg(org) = expect_context::<CurrentOrg>();
    let create = ServerAction::<CreateRole>::new();
    let update = ServerAction::<UpdateRole>::new();
    let delete = ServerAction::<DeleteRole>::new();
    let roles =
        Resource::new(move || (slug.get(), create.version().get(), update.version().get(), delete.version().get()), |(slug, ..)| list_roles(slug));
    let create_error = last_error(create);
    let row_error = Signal::derive(move || last_error(update).get().or_else(|| last_error(delete).get()));
    view! {
        <PageTitle text="Roles" />
        <header class="page-header">
            <h1>"Roles"</h1>
        </header>
        <p class="muted">
            "Everyone in the organization can see the projects open to it, the team and its groups, and can leave. A role adds to that. The four built-in roles are fixed; Owners (and whoever they let) define the organization's own, never with rights they don't have themselves. Invitations offer the built-in roles: give a custom role once someone has joined."
        </p>
        <Suspense fallback=|| view! { <p class="loading">"Loading roles…"</p> }>
            {move || Suspend::new(async move {
                let mine = org.await.map(|o| o.rights).unwrap_or(Rights::BuiltIn(Role::Viewer));
                let overview = match roles.await {
                    Ok(overview) => overview,
                    Err(error) => return view! { <ErrorPage error /> }.into_any(),
                };
                let offered: Vec<Permission> = overview.catalogue.iter().copied().filter(|p| mine.can(*p)).collect();
                let built_in = overview
                    .built_in
                    .into_iter()
                    .map(|(role, permissions)| {
                        let rights: Vec<&str> = permissions.iter().filter(|p| !p.is_baseline()).map(|p| p.describe()).collect();
                        view! {
                            <tr data-testid="built-in-role">
                                <th scope="row">{role.label()} " " <span class="badge">"Built in"</span></th>
                                <td>{if rights.is_empty() { "Only what everyone may do".to_string() } else { rights.join("; ") }}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                let custom = if overview.custom.is_empty() {
                    view! { <p class="muted">"No roles of the organization's own yet."</p> }.into_any()
                } else {
                    overview
                        .custom
                        .into_iter()
                        .map(|role| view! { <CustomRoleCard role offered=offered.clone() update delete /> })
                        .collect_view()
                        .into_any()
                };
                view! {
                    <section class="card" aria-labelledby="built-in-roles">
                        <h2 id="built-in-roles">"Built-in roles"</h2>
                        <table class="table">
                            <thead><tr><th scope="col">"Role"</th><th scope="col">"May also"</th></tr></thead>
                            <tbody>{built_in}</tbody>
                        </table>
                    </section>
                    <section class="card" aria-labelledby="custom-roles">
                        <h2 id="custom-roles">"The organization's roles"</h2>
                        <FormAlert error=row_error fields=&[] />
                        {custom}
                    </section>
                    {overview.can_manage.then(|| view! {
                        <section class="card form-card" aria-labelledby="new-role">
                            <h2 id="new-role">"New role"</h2>
                            <ActionForm action=create attr:class="form" attr:novalidate=true>
                                <FormAlert error=create_error fields=&["name", "description", "permissions"] />
                                <input type="hidden" name="slug" value=move || slug.get() />
                                <Field label="Role name" name="name" required=true error=create_error hint="For example \"Auditor\" or \"Billing manager\"." />
                                <Field label="Description" name="description" error=create_error hint="Optional. Who it is for." />
                                <Checklist offered=offered.clone() chosen=Vec::new() id_prefix="new".to_string() />
                                <p class="field-error" role="alert">
                                    {move || create_error.get().filter(|e| e.field() == Some("permissions")).map(|e| e.to_string())}
                                </p>
                                <Submit label="Create role" busy_label="Creating…" pending=create.pending() />
                            </ActionForm>
                        </section>
                    })}
                }
                    .into_any()
            })}
        </Suspense>
    }
}

/// The permissions a role can be made of, grouped by what they are about; only those the
/// viewer has are offered.
#[component]
fn Checklist(offered: Vec<Permission>, chosen: Vec<Permission>, id_prefix: String) -> impl IntoView {
    let mut areas: Vec<&'static str> = Vec::new();
    for p in &offered {
        if !areas.contains(&p.area()) {
            areas.push(p.area());
        }
    }
    areas
        .into_iter()
        .map(|area| {
            let items = offered
                .iter()
                .filter(|p| p.area() == area)
                .map(|p| {
                    let id = format!("{id_prefix}-{}", p.name());
                    view! {
                        <label class="check" for=id.clone()>
                            <input type="checkbox" id=id.clone() name="permissions[]" value=p.name() checked=chosen.contains(p) />
                            " " {p.describe()}
                        </label>
                    }
                })
                .collect_view();
            view! {
                <fieldset class="field">
                    <legend>{area}</legend>
                    {items}
                </fieldset>
            }
        })
        .collect_view()
}

#[component]
fn CustomRoleCard(
    role: CustomRoleInfo,
    offered: Vec<Permission>,
    update: ServerAction<UpdateRole>,
    delete: ServerAction<DeleteRole>,
) -> impl IntoView {
    let slug = use_slug();
    let id = role.id.to_string();
    let heading = format!("role-{id}");
    let rights: Vec<&str> = role.permissions.iter().map(|p| p.describe()).collect();
    let held = match role.holders {
        0 => "Nobody holds it yet.".to_string(),
        1 => "Held by 1 member.".to_string(),
        n => format!("Held by {n} members."),
    };
    let (edit_id, delete_id, name_id, description_id) = (id.clone(), id.clone(), format!("name-{id}"), format!("description-{id}"));
    let (name, description, deleted_name) = (role.name.clone(), role.description.clone(), role.name.clone());
    view! {
        <article class="card" aria-labelledby=heading.clone() data-testid="custom-role">
            <h3 id=heading.clone()>{role.name.clone()}</h3>
            {(!role.description.is_empty()).then(|| view! { <p class="written-text">{role.description.clone()}</p> })}
            <p>{if rights.is_empty() { "Only what everyone may do.".to_string() } else { rights.join("; ") }}</p>
            <p class="muted">{held}</p>
            {role.can_edit.then(|| view! {
                <div class="item-actions">
                    <details>
                        <summary class="btn">"Edit…"</summary>
                        <ActionForm action=update attr:class="form">
                            <input type="hidden" name="slug" value=move || slug.get() />
                            <input type="hidden" name="role" value=edit_id />
                            <div class="field">
                                <label for=name_id.clone()>"Role name"</label>
                                <input id=name_id name="name" class="input" value=name required=true />
                            </div>
                            <div class="field">
                                <label for=description_id.clone()>"Description"</label>
                                <input id=description_id name="description" class="input" value=description />
                            </div>
                            <Checklist offered=offered.clone() chosen=role.permissions.clone() id_prefix=format!("edit-{}", role.id) />
                            <Submit label="Save role" busy_label="Saving…" pending=update.pending() />
                        </ActionForm>
                    </details>
                    <ConfirmDelete summary="Delete…" open=Signal::derive(|| false)>
                        <ActionForm action=delete attr:class="form">
                            <p>"Delete the " <strong>{deleted_name}</strong> " role? Nobody may hold it when it goes."</p>
                            <input type="hidden" name="slug" value=move || slug.get() />
                            <input type="hidden" name="role" value=delete_id />
                            <Submit label="Delete role" busy_label="Deleting…" pending=delete.pending() danger=true />
                        </ActionForm>
                    </ConfirmDelete>
                </div>
            })}
        </article>
    }
}
