//! Documents: pages of text inside a project. Viewers read them; Members write them and change
//! or delete their own; Admins and Owners any; a grant on the project can give more there (see
//! `access`). A document is seen only where its project is. Every change is audited with what
//! it changed.

use crate::access::Lock;
use crate::audit::{self, AuditEntry};
use crate::error::{Constraint, Result};
use crate::members::rfc3339;
use crate::tenancy::{Change, WriteTx};
use crate::Org;
use tessera_domain::access::{ProjectStanding, Target};
use tessera_domain::dto::{Document, DocumentList, DocumentSummary};
use tessera_domain::input::{DocumentBody, DocumentTitle, FieldError};
use tessera_domain::{AppError, Permission};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: Uuid,
    project_id: Uuid,
    title: String,
    body: String,
    body_truncated: bool,
    created_by: Uuid,
    created_at: OffsetDateTime,
    updated_by: Uuid,
    updated_at: OffsetDateTime,
}

inventory::submit! {
    Constraint { name: "documents_project_fk", table: "documents", field: "project", message: "That project doesn't exist in this organization (any more)." }
}

const COLUMNS: &str = "id, project_id, title, body, false AS body_truncated, created_by, created_at, updated_by, updated_at";
/// How much of each body a list carries.
const EXCERPT: usize = 280;

/// A new document, parsed at the edge.
pub struct DocumentDraft {
    pub title: DocumentTitle,
    pub body: DocumentBody,
}

impl DocumentDraft {
    pub fn parse(title: &str, body: &str) -> Result<Self, FieldError> {
        Ok(Self { title: DocumentTitle::parse(title)?, body: DocumentBody::parse(body)? })
    }
}

/// What a change sets (`None` keeps a field) and the `updated_at` it was made from, if known:
/// when someone changed the document since, the change is refused rather than undoing theirs.
pub struct DocumentChange {
    pub title: Option<DocumentTitle>,
    pub body: Option<DocumentBody>,
    /// The `updated_at` it was made from, if the client said.
    pub seen_version: Option<OffsetDateTime>,
}

impl DocumentChange {
    pub fn parse(title: Option<&str>, body: Option<&str>, updated_at: Option<&str>) -> Result<Self, FieldError> {
        Ok(Self {
            title: title.map(DocumentTitle::parse).transpose()?,
            body: body.map(DocumentBody::parse).transpose()?,
            seen_version: crate::edits::seen_version(updated_at)?,
        })
    }
}

/// The project's documents, most recently changed first, each with the start of its text, and
/// whether the asker may write there.
pub async fn list(org: &Org, project: Uuid) -> Result<DocumentList> {
    let (mut tx, standing) = org.project_read(project, Permission::ViewDocuments).await?;
    let rows: Vec<DocumentRow> = sqlx::query_as(&format!(
        "SELECT id, project_id, title, left(body, {EXCERPT}) AS body, length(body) > {EXCERPT} AS body_truncated,
                created_by, created_at, updated_by, updated_at
           FROM documents WHERE project_id = $1 ORDER BY updated_at DESC, id LIMIT 500"
    ))
    .bind(project)
    .fetch_all(tx.conn())
    .await?;
    drop(tx);
    let names = author_names(org, &rows).await?;
    let documents = rows
        .into_iter()
        .map(|row| DocumentSummary {
            can_change: may_change(org, &standing, row.created_by),
            created_by: names(&row.created_by),
            updated_by: names(&row.updated_by),
            id: row.id,
            project_id: row.project_id,
            title: row.title,
            excerpt: row.body,
            truncated: row.body_truncated,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        })
        .collect();
    Ok(DocumentList { documents, can_write: org.can(Permission::WriteDocuments, Target::Project(&standing)) })
}

pub async fn get(org: &Org, project: Uuid, id: Uuid) -> Result<Document> {
    let (mut tx, standing) = org.project_read(project, Permission::ViewDocuments).await?;
    let row: Option<DocumentRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM documents WHERE project_id = $1 AND id = $2"))
        .bind(project)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    drop(tx);
    one(org, &standing, row.ok_or_else(no_such_document)?).await
}

pub async fn create(org: &Org, project: Uuid, draft: DocumentDraft) -> Result<Document> {
    // The project is held until commit, so it can't be deleted under the new document.
    let (mut tx, standing) = org.project_write(project, Permission::WriteDocuments, Lock::Share, Change::Any).await?;
    let id = Uuid::new_v4();
    let row: DocumentRow = sqlx::query_as(&format!(
        "INSERT INTO documents (id, project_id, title, body, created_by, updated_by) VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(project)
    .bind(draft.title.as_str())
    .bind(draft.body.as_str())
    .bind(org.user_id)
    .fetch_one(tx.conn())
    .await?;
    let changes = audit::created(&[("title", draft.title.as_str()), ("body", draft.body.as_str()), ("project_id", &project.to_string())]);
    tx.commit(AuditEntry::new("document.created", "document", id, changes)).await?;
    one(org, &standing, row).await
}

/// Changes a document's title or text; returns it as it is now. Saving it unchanged writes
/// and records nothing.
pub async fn update(org: &Org, project: Uuid, id: Uuid, change: DocumentChange) -> Result<Document> {
    let (mut tx, standing) = org.project_write(project, Permission::ViewDocuments, Lock::Share, Change::Any).await?;
    let before = lock_for_change(tx.conn(), org, &standing, project, id).await?;
    crate::edits::ensure_current(change.seen_version, before.updated_at, "document")?;
    let title = change.title.as_ref().map_or(before.title.as_str(), DocumentTitle::as_str);
    let body = change.body.as_ref().map_or(before.body.as_str(), DocumentBody::as_str);
    let changes = audit::changed(&[("title", &before.title, title), ("body", &before.body, body)]);
    if changes.as_object().is_some_and(|c| c.is_empty()) {
        drop(tx);
        return one(org, &standing, before).await;
    }
    let row: DocumentRow = sqlx::query_as(&format!(
        "UPDATE documents SET title = $2, body = $3, updated_by = $4, updated_at = clock_timestamp() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(title)
    .bind(body)
    .bind(org.user_id)
    .fetch_one(tx.conn())
    .await?;
    tx.commit(AuditEntry::new("document.updated", "document", id, changes)).await?;
    one(org, &standing, row).await
}

/// Deletes a document; the audit record keeps what it said.
pub async fn delete(org: &Org, project: Uuid, id: Uuid) -> Result<()> {
    let (mut tx, standing) = org.project_write(project, Permission::ViewDocuments, Lock::Share, Change::Removal).await?;
    let before = lock_for_change(tx.conn(), org, &standing, project, id).await?;
    sqlx::query("DELETE FROM documents WHERE id = $1").bind(id).execute(tx.conn()).await?;
    let changes = audit::removed(&[("title", &before.title), ("body", &before.body), ("project_id", &project.to_string())]);
    tx.commit(AuditEntry::new("document.deleted", "document", id, changes)).await
}

/// The most documents a project may hold and still be deleted in one go.
const MAX_DELETED_WITH_PROJECT: i64 = 1_000;

/// Deletes the documents of a project being deleted (in its transaction, the project already
/// locked), each only if the actor could delete it on its own, each with its own audit record
/// (the title; a document's text stays in its own history). Returns how many.
pub(crate) async fn delete_with_project(tx: &mut WriteTx, org: &Org, project: Uuid, standing: &ProjectStanding) -> Result<usize> {
    let (total, others): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE created_by <> $2) FROM documents WHERE project_id = $1")
            .bind(project)
            .bind(org.user_id)
            .fetch_one(tx.conn())
            .await?;
    if total == 0 {
        return Ok(0);
    }
    org.require_on(Permission::WriteDocuments, Target::Document { project: standing, author: org.user_id }, no_such_document)?;
    // Anyone but the actor (ids are never nil): may they delete what others wrote?
    let someone_else = Uuid::nil();
    if others > 0 && !org.can(Permission::WriteDocuments, Target::Document { project: standing, author: someone_else }) {
        return Err(AppError::Forbidden("This project holds documents other people wrote, so only an admin can delete it.".into()).into());
    }
    if total > MAX_DELETED_WITH_PROJECT {
        return Err(AppError::Conflict(FieldError::new(
            "project",
            format!("This project holds {total} documents; delete some first (up to {MAX_DELETED_WITH_PROJECT} go with a project)."),
        ))
        .into());
    }
    #[derive(sqlx::FromRow)]
    struct Removed {
        id: Uuid,
        title: String,
    }
    let removed: Vec<Removed> =
        sqlx::query_as("DELETE FROM documents WHERE project_id = $1 RETURNING id, title").bind(project).fetch_all(tx.conn()).await?;
    for document in &removed {
        let changes = audit::removed(&[("title", &document.title), ("project_id", &project.to_string())]);
        tx.record(AuditEntry::new("document.deleted", "document", document.id, changes)).await?;
    }
    Ok(removed.len())
}

/// Locks the document (a second editor waits, then sees the first one's result or that it is
/// gone) and checks the actor may change it.
async fn lock_for_change(conn: &mut sqlx::PgConnection, org: &Org, standing: &ProjectStanding, project: Uuid, id: Uuid) -> Result<DocumentRow> {
    let row: Option<DocumentRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM documents WHERE project_id = $1 AND id = $2 FOR UPDATE"))
        .bind(project)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    let row = row.ok_or_else(no_such_document)?;
    org.require_on(Permission::WriteDocuments, Target::Document { project: standing, author: row.created_by }, no_such_document)?;
    Ok(row)
}

/// Whether the actor may change or delete a document `author` wrote in this project.
fn may_change(org: &Org, standing: &ProjectStanding, author: Uuid) -> bool {
    org.can(Permission::WriteDocuments, Target::Document { project: standing, author })
}

/// A row as people see it: authors by name (tenant data keeps only ids).
async fn one(org: &Org, standing: &ProjectStanding, row: DocumentRow) -> Result<Document> {
    let names = author_names(org, std::slice::from_ref(&row)).await?;
    Ok(Document {
        can_change: may_change(org, standing, row.created_by),
        created_by: names(&row.created_by),
        updated_by: names(&row.updated_by),
        id: row.id,
        project_id: row.project_id,
        title: row.title,
        body: row.body,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

/// The names of the rows' authors, looked up in one batch (users live in the control plane).
async fn author_names(org: &Org, rows: &[DocumentRow]) -> Result<impl Fn(&Uuid) -> String> {
    let ids: Vec<Uuid> = rows.iter().flat_map(|r| [r.created_by, r.updated_by]).collect();
    let names = org.display_names(&ids).await?;
    Ok(move |id: &Uuid| names.get(id).cloned().unwrap_or_else(|| "a former member".into()))
}

/// A document that isn't there, or not in this project of this organization: one answer.
pub fn no_such_document() -> AppError {
    AppError::NotFound("That document doesn't exist in this project.".into())
}
