use crate::api::{
    get_project, get_project_access, list_documents, list_groups, list_members, list_projects, CreateProject, DeleteProject, UpdateProject,
};
use crate::components::form::{last_error, ConfirmDelete, Field, FormAlert, Submit, TextAreaField};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use crate::pages::org::{use_slug, CurrentOrg};
use crate::pages::sharing::{ProjectSharing, SharingActions};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use tessera_domain::access::Visibility;
use tessera_domain::input::{ProjectDescription, ProjectName};
use tessera_domain::Permission;

fn can_create() -> Signal<bool> {
    let CurrentOrg(org) = expect_context::<CurrentOrg>();
    Signal::derive(move || org.get().and_then(|o| o.ok()).is_some_and(|o| o.rights.can(Permission::WriteProjects)))
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let slug = use_slug();
    let projects = Resource::new(move || slug.get(), list_projects);
    let can_create = can_create();
    // Filtering happens in the browser, instantly, on the rows already loaded.
    let filter = RwSignal::new(String::new());
    view! {
        <PageTitle text="Projects" />
        <header class="page-header">
            <h1>"Projects"</h1>
            <Show when=move || can_create.get()>
                <a class="btn btn-primary" href=move || format!("/t/{}/projects/new", slug.get())>"New project"</a>
            </Show>
        </header>
        <Suspense fallback=|| view! { <p class="loading">"Loading projects…"</p> }>
            {move || Suspend::new(async move {
                match projects.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(list) if list.is_empty() => {
                        view! {
                            <div class="empty-state card">
                                <h2>"No projects yet"</h2>
                                <p>
                                    {move || if can_create.get() {
                                        "Create the first one for your team."
                                    } else {
                                        "When your team creates projects, they'll show up here."
                                    }}
                                </p>
                            </div>
                        }
                            .into_any()
                    }
                    Ok(list) => {
                        let total = list.len();
                        let rows = StoredValue::new(list);
                        let visible = move || {
                            let needle = filter.get().trim().to_lowercase();
                            rows.get_value()
                                .into_iter()
                                .filter(|p| needle.is_empty() || p.name.to_lowercase().contains(&needle) || p.description.to_lowercase().contains(&needle))
                                .collect::<Vec<_>>()
                        };
                        view! {
                            <div class="toolbar">
                                <label class="sr-only" for="project-filter">"Filter projects"</label>
                                <input
                                    id="project-filter"
                                    type="search"
                                    class="input"
                                    placeholder="Filter projects"
                                    prop:value=move || filter.get()
                                    on:input=move |ev| filter.set(event_target_value(&ev))
                                />
                                <span class="muted" data-testid="project-count" aria-live="polite">
                                    {move || {
                                        let shown = visible().len();
                                        if shown == total { format!("{total} projects") } else { format!("{shown} of {total} projects") }
                                    }}
                                </span>
                            </div>
                            <table class="table">
                                <thead>
                                    <tr>
                                        <th scope="col">"Name"</th>
                                        <th scope="col">"Description"</th>
                                        <th scope="col">"Created by"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    <For each=visible key=|p| p.id let:project>
                                        <tr data-testid="project-row">
                                            <td>
                                                <a href=format!("/t/{}/projects/{}", slug.get_untracked(), project.id)>{project.name.clone()}</a>
                                                {(project.visibility == Visibility::Restricted).then(|| view! {
                                                    " " <span class="badge" data-testid="restricted-badge">"Restricted"</span>
                                                })}
                                            </td>
                                            <td class="muted">{project.description.clone()}</td>
                                            <td>{project.created_by.clone()}</td>
                                        </tr>
                                    </For>
                                </tbody>
                            </table>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

fn check_name(s: &str) -> Option<String> {
    ProjectName::parse(s).err().map(|e| e.message)
}

fn check_description(s: &str) -> Option<String> {
    ProjectDescription::parse(s).err().map(|e| e.message)
}

#[component]
pub fn NewProjectPage() -> impl IntoView {
    let slug = use_slug();
    let action = ServerAction::<CreateProject>::new();
    let error = last_error(action);
    let can_create = can_create();
    view! {
        <PageTitle text="New project" />
        <section class="card form-card">
            <h1>"New project"</h1>
            <Show
                when=move || can_create.get()
                fallback=|| view! { <p class="alert alert-info">"Your role can view projects but not create them. Ask an admin if you need to."</p> }
            >
                <ActionForm action attr:class="form" attr:novalidate=true>
                    <FormAlert error fields=&["name", "description"] />
                    <input type="hidden" name="slug" value=move || slug.get() />
                    <Field label="Project name" name="name" required=true error check=check_name />
                    <Field label="Description" name="description" error check=check_description hint="Optional. What is this project for?" />
                    <div class="field">
                        <label for="field-visibility">"Who can see it"</label>
                        <select name="visibility" id="field-visibility" class="input" aria-describedby="field-visibility-hint">
                            <option value=Visibility::Organization.as_str() selected=true>"Everyone in the organization"</option>
                            <option value=Visibility::Restricted.as_str()>"Only people and groups I give access to"</option>
                        </select>
                        <p class="field-hint" id="field-visibility-hint">"Owners and Admins always see every project. You can change this later."</p>
                    </div>
                    <Submit label="Create project" busy_label="Creating…" pending=action.pending() />
                </ActionForm>
            </Show>
        </section>
    }
}

#[component]
pub fn ProjectPage() -> impl IntoView {
    let slug = use_slug();
    let params = use_params_map();
    let sharing = SharingActions::default();
    let project =
        Resource::new(move || (slug.get(), params.read().get("id").unwrap_or_default(), sharing.version()), |(slug, id, _)| get_project(slug, id));
    // Made with the page, not inside the project's view: a resource created there isn't carried
    // to the browser with the page, so hydrating would find other markup.
    let documents = Resource::new(move || (slug.get(), params.read().get("id").unwrap_or_default()), |(slug, id)| list_documents(slug, id));
    let access = Resource::new(
        move || (slug.get(), params.read().get("id").unwrap_or_default(), sharing.version()),
        |(slug, id, _)| get_project_access(slug, id),
    );
    let members = Resource::new(move || slug.get(), list_members);
    let groups = Resource::new(move || slug.get(), list_groups);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading project…"</p> }>
            {move || Suspend::new(async move {
                match project.await {
                    Ok(p) => {
                        let documents = documents.await;
                        // Who may share also chooses from the team; a failure there leaves the list short, not the page.
                        let sharing_panel = match access.await {
                            Ok(access) => {
                                let (members, groups) = if access.can_share {
                                    (members.await.unwrap_or_default(), groups.await.unwrap_or_default())
                                } else {
                                    (Vec::new(), Vec::new())
                                };
                                Some(view! { <ProjectSharing access members groups actions=sharing /> })
                            }
                            Err(_) => None,
                        };
                        view! {
                            <PageTitle text=p.name.clone() />
                            <nav class="breadcrumbs" aria-label="Breadcrumb">
                                <a href=format!("/t/{}/projects", slug.get_untracked())>"Projects"</a>
                                " / "
                            </nav>
                            <article class="card">
                                <h1 data-testid="project-name">{p.name.clone()}</h1>
                                <p class="project-description written-text">
                                    {if p.description.is_empty() { "No description.".to_string() } else { p.description.clone() }}
                                </p>
                                <dl class="meta">
                                    <dt>"Created by"</dt>
                                    <dd>{p.created_by.clone()}</dd>
                                    <dt>"Created"</dt>
                                    <dd><time datetime=p.created_at.clone()>{p.created_at.chars().take(10).collect::<String>()}</time></dd>
                                </dl>
                                {p.can_change.then(|| view! { <ProjectActions id=p.id.to_string() name=p.name.clone() /> })}
                            </article>
                            {sharing_panel}
                            <crate::pages::documents::ProjectDocuments project=p.id.to_string() documents />
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Edit and delete, for whoever may change the project. Deleting asks first and names what goes.
#[component]
fn ProjectActions(id: String, name: String) -> impl IntoView {
    let slug = use_slug();
    let delete = ServerAction::<DeleteProject>::new();
    let error = last_error(delete);
    let edit_href = format!("/t/{}/projects/{id}/edit", slug.get_untracked());
    view! {
        <div class="item-actions">
            <a class="btn" href=edit_href data-testid="edit-project">"Edit"</a>
            <ConfirmDelete summary="Delete…" open=Signal::derive(move || error.get().is_some())>
                <ActionForm action=delete attr:class="form">
                    <FormAlert error fields=&[] />
                    <p>"Delete " <strong>{name}</strong> " and its documents for everyone in the organization? This can't be undone. (A member can delete a project only if they wrote every document in it.)"</p>
                    <input type="hidden" name="slug" value=move || slug.get() />
                    <input type="hidden" name="id" value=id.clone() />
                    <Submit label="Delete project" busy_label="Deleting…" pending=delete.pending() danger=true />
                </ActionForm>
            </ConfirmDelete>
        </div>
    }
}

#[component]
pub fn EditProjectPage() -> impl IntoView {
    let slug = use_slug();
    let params = use_params_map();
    let project = Resource::new(move || (slug.get(), params.read().get("id").unwrap_or_default()), |(slug, id)| get_project(slug, id));
    let action = ServerAction::<UpdateProject>::new();
    let error = last_error(action);
    view! {
        <PageTitle text="Edit project" />
        <Suspense fallback=|| view! { <p class="loading">"Loading project…"</p> }>
            {move || Suspend::new(async move {
                match project.await {
                    Ok(p) if p.can_change => {
                        let name = RwSignal::new(p.name.clone());
                        view! {
                            <section class="card form-card">
                                <h1>"Edit project"</h1>
                                <ActionForm action attr:class="form" attr:novalidate=true>
                                    <FormAlert error fields=&["name", "description"] />
                                    <input type="hidden" name="slug" value=move || slug.get() />
                                    <input type="hidden" name="id" value=p.id.to_string() />
                                    <input type="hidden" name="updated_at" value=p.updated_at.clone() />
                                    <Field label="Project name" name="name" required=true error check=check_name value=name />
                                    <TextAreaField label="Description" name="description" error value=p.description.clone() />
                                    <Submit label="Save changes" busy_label="Saving…" pending=action.pending() />
                                </ActionForm>
                                <a href=format!("/t/{}/projects/{}", slug.get_untracked(), p.id)>"Cancel"</a>
                            </section>
                        }
                            .into_any()
                    }
                    Ok(_) => {
                        view! {
                            <p class="alert alert-info">"You can't change this project. Members change the projects they created; its project admins and the organization's admins change any."</p>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
