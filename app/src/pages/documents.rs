//! The documents slice's pages: a project's documents (on the project's page), and a document
//! to read, write, edit and delete.

use crate::api::{get_document, get_project, CreateDocument, DeleteDocument, UpdateDocument};
use crate::components::form::{last_error, ConfirmDelete, Field, FormAlert, Submit, TextAreaField};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use crate::pages::org::use_slug;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use tessera_domain::dto::{DocumentList, DocumentSummary};
use tessera_domain::input::DocumentTitle;
use tessera_domain::AppError;

fn check_title(s: &str) -> Option<String> {
    DocumentTitle::parse(s).err().map(|e| e.message)
}

/// `/t/{slug}/projects/{project}` + `rest`.
fn project_href(project: &str, rest: &str) -> String {
    format!("/t/{}/projects/{project}{rest}", use_slug().get_untracked())
}

/// The project's and document's ids from the address.
fn ids() -> Memo<(String, String, String)> {
    let slug = use_slug();
    let params = use_params_map();
    Memo::new(move |_| {
        let params = params.read();
        (slug.get(), params.get("id").unwrap_or_default(), params.get("doc").unwrap_or_default())
    })
}

/// The documents section of a project's page (`documents`: loaded with the page).
#[component]
pub fn ProjectDocuments(project: String, documents: Result<DocumentList, AppError>) -> impl IntoView {
    let body = match documents {
        Err(error) => view! { <h2 id="documents-heading">"Documents"</h2> <ErrorPage error /> }.into_any(),
        Ok(list) => {
            // Whether the reader may write comes with the list.
            let new_link = list.can_write.then(|| {
                view! { <a class="btn btn-primary" href=project_href(&project, "/documents/new") data-testid="new-document">"New document"</a> }
            });
            let items = if list.documents.is_empty() {
                view! { <p class="muted">"No documents in this project yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="document-list">
                        {list.documents.into_iter().map(|d| view! { <DocumentItem document=d /> }).collect_view()}
                    </ul>
                }
                .into_any()
            };
            view! {
                <header class="page-header">
                    <h2 id="documents-heading">"Documents"</h2>
                    {new_link}
                </header>
                {items}
            }
            .into_any()
        }
    };
    view! { <section class="card" aria-labelledby="documents-heading">{body}</section> }
}

#[component]
fn DocumentItem(document: DocumentSummary) -> impl IntoView {
    let href = project_href(&document.project_id.to_string(), &format!("/documents/{}", document.id));
    let excerpt = if document.truncated { format!("{}…", document.excerpt) } else { document.excerpt };
    view! {
        <li data-testid="document-row">
            <a href=href>{document.title}</a>
            <p class="muted">{excerpt}</p>
            <p class="muted">"Changed by " {document.updated_by} " on " <time datetime=document.updated_at.clone()>{document.updated_at.chars().take(10).collect::<String>()}</time></p>
        </li>
    }
}

#[component]
pub fn NewDocumentPage() -> impl IntoView {
    let ids = ids();
    let action = ServerAction::<CreateDocument>::new();
    let error = last_error(action);
    // Whether they may write here depends on the project (a grant can give more than the role).
    let project = Resource::new(
        move || {
            let (slug, project, _) = ids.get();
            (slug, project)
        },
        |(slug, project)| get_project(slug, project),
    );
    view! {
        <PageTitle text="New document" />
        <section class="card form-card">
            <h1>"New document"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading project…"</p> }>
                {move || Suspend::new(async move {
                    match project.await {
                        Err(error) => view! { <ErrorPage error /> }.into_any(),
                        Ok(p) if !p.can_write_documents => {
                            view! {
                                <p class="alert alert-info">
                                    "You can read this project's documents but not write them. Its project admin, or an admin of the organization, can make you an editor."
                                </p>
                            }
                                .into_any()
                        }
                        Ok(_) => {
                            view! {
                                <ActionForm action attr:class="form" attr:novalidate=true>
                                    <FormAlert error fields=&["title", "body"] />
                                    <input type="hidden" name="slug" value=move || ids.get().0 />
                                    <input type="hidden" name="project" value=move || ids.get().1 />
                                    <Field label="Title" name="title" required=true error check=check_title />
                                    <TextAreaField label="Text" name="body" error rows=12 />
                                    <Submit label="Save document" busy_label="Saving…" pending=action.pending() />
                                </ActionForm>
                                <a href=move || project_href(&ids.get().1, "")>"Cancel"</a>
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
pub fn DocumentPage() -> impl IntoView {
    let ids = ids();
    let document = Resource::new(move || ids.get(), |(slug, project, id)| get_document(slug, project, id));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading document…"</p> }>
            {move || Suspend::new(async move {
                match document.await {
                    Ok(d) => {
                        let project = d.project_id.to_string();
                        view! {
                            <PageTitle text=d.title.clone() />
                            <nav class="breadcrumbs" aria-label="Breadcrumb">
                                <a href=project_href(&project, "")>"Back to the project"</a>
                            </nav>
                            <article class="card">
                                <h1 data-testid="document-title">{d.title.clone()}</h1>
                                <p class="written-text" data-testid="document-body">{d.body.clone()}</p>
                                <dl class="meta">
                                    <dt>"Written by"</dt>
                                    <dd>{d.created_by.clone()}</dd>
                                    <dt>"Last changed"</dt>
                                    <dd>{d.updated_by.clone()} ", " <time datetime=d.updated_at.clone()>{d.updated_at.chars().take(10).collect::<String>()}</time></dd>
                                </dl>
                                {d.can_change.then(|| view! { <DocumentActions project=project.clone() id=d.id.to_string() title=d.title.clone() /> })}
                            </article>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Edit and delete, for whoever may change the document. Deleting asks first and names it.
#[component]
fn DocumentActions(project: String, id: String, title: String) -> impl IntoView {
    let delete = ServerAction::<DeleteDocument>::new();
    let error = last_error(delete);
    let slug = use_slug();
    view! {
        <div class="item-actions">
            <a class="btn" href=project_href(&project, &format!("/documents/{id}/edit")) data-testid="edit-document">"Edit"</a>
            <ConfirmDelete summary="Delete…" open=Signal::derive(move || error.get().is_some())>
                <ActionForm action=delete attr:class="form">
                    <FormAlert error fields=&[] />
                    <p>"Delete " <strong>{title}</strong> " for everyone in the organization? This can't be undone."</p>
                    <input type="hidden" name="slug" value=move || slug.get() />
                    <input type="hidden" name="project" value=project.clone() />
                    <input type="hidden" name="id" value=id.clone() />
                    <Submit label="Delete document" busy_label="Deleting…" pending=delete.pending() danger=true />
                </ActionForm>
            </ConfirmDelete>
        </div>
    }
}

#[component]
pub fn EditDocumentPage() -> impl IntoView {
    let ids = ids();
    let document = Resource::new(move || ids.get(), |(slug, project, id)| get_document(slug, project, id));
    let action = ServerAction::<UpdateDocument>::new();
    let error = last_error(action);
    view! {
        <PageTitle text="Edit document" />
        <Suspense fallback=|| view! { <p class="loading">"Loading document…"</p> }>
            {move || Suspend::new(async move {
                match document.await {
                    Ok(d) if d.can_change => {
                        let project = d.project_id.to_string();
                        let cancel_href = project_href(&project, &format!("/documents/{}", d.id));
                        view! {
                            <section class="card form-card">
                                <h1>"Edit document"</h1>
                                <ActionForm action attr:class="form" attr:novalidate=true>
                                    <FormAlert error fields=&["title", "body"] />
                                    <input type="hidden" name="slug" value=move || ids.get().0 />
                                    <input type="hidden" name="project" value=project.clone() />
                                    <input type="hidden" name="id" value=d.id.to_string() />
                                    <input type="hidden" name="updated_at" value=d.updated_at.clone() />
                                    <Field label="Title" name="title" required=true error check=check_title value=RwSignal::new(d.title.clone()) />
                                    <TextAreaField label="Text" name="body" error value=d.body.clone() rows=12 />
                                    <Submit label="Save changes" busy_label="Saving…" pending=action.pending() />
                                </ActionForm>
                                <a href=cancel_href>"Cancel"</a>
                            </section>
                        }
                            .into_any()
                    }
                    Ok(_) => view! {
                        <p class="alert alert-info">"You can't change this document. Members change the documents they wrote; the project's editors and admins, and the organization's admins, change any."</p>
                    }
                        .into_any(),
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
