//! Moving a tenant between models and regions (pooled → schema → dedicated, region A → B, and
//! back) with its data intact.
//!
//! 1. The control plane marks the tenant `moving`: from then on the door serves reads but
//!    refuses writes. A second move, or a move of a suspended or deleted tenant, is refused here.
//! 2. The destination is created and migrated (nothing to do for a pooled destination).
//! 3. The source is *sealed*: a fence row is written under an exclusive advisory lock that every
//!    write transaction takes in shared mode, so writes already in flight finish first and any
//!    later one sees the fence and stops.
//! 4. Every tenant table is streamed with binary COPY into the destination, then row counts and
//!    checksums are compared inside the destination transaction; a mismatch rolls it back.
//! 5. One control-plane UPDATE switches the tenant to its new place (audited), and the old copy
//!    is removed (a vacated shared schema keeps the fence, so a request routed there by a stale
//!    read still can't write). Any failure before the switch unseals the source and removes the
//!    half-made destination, leaving the tenant where it was; `abort_move` does the same for a
//!    move whose process died.

use super::placement::Placement;
use super::provision::{self, create_storage, drop_storage, enter_as_owner, tenant_tables, Fence};
use super::{SystemActor, Tenancy};
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use futures_util::StreamExt;
use sqlx::{Connection, PgConnection};
use tessera_domain::input::FieldError;
use tessera_domain::placement::{RegionName, TenancyModel};
use tessera_domain::AppError;
use uuid::Uuid;

/// The advisory-lock key that orders writes against a move's seal.
pub(crate) fn fence_key(tenant_id: Uuid) -> String {
    format!("tessera-fence:{tenant_id}")
}

/// One table's verified copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    pub rows: i64,
    pub checksum: String,
}

#[derive(Debug, Clone)]
pub struct MoveReport {
    pub slug: String,
    pub from: Placement,
    pub to: Placement,
    pub tables: Vec<TableCopy>,
    /// Set when the old copy could not be removed (the move itself succeeded).
    pub leftover: Option<String>,
}

/// How long the old copy is kept after the switch, so requests that resolved the tenant just
/// before it finish against the old place instead of finding it gone.
const SWITCH_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Moves the tenant `slug` to `model` in `region` (an empty region keeps its current one).
pub async fn move_tenant(tenancy: &Tenancy, slug: &str, model: &str, region: &str, request_id: &str) -> Result<MoveReport> {
    let model = TenancyModel::parse(model)?;
    let (id, from, to) = begin_move(tenancy, slug, model, region).await?;
    let copies = match copy(tenancy, id, &from, &to).await {
        Ok(copies) => copies,
        Err(e) => {
            tracing::warn!(error = %e, tenant = slug, "move failed while copying; undoing");
            undo(tenancy, id, &from, &to).await;
            return Err(e);
        }
    };
    if let Err(e) = switch(tenancy, id, &from, &to, &copies, request_id).await {
        // The commit may have happened even though we saw an error (a dropped connection):
        // undoing then would remove the only live copy. Ask the control plane what is true.
        if current_placement(tenancy, id).await.ok().flatten().as_ref() != Some(&to) {
            tracing::warn!(error = %e, tenant = slug, "move failed at the switch; undoing");
            undo(tenancy, id, &from, &to).await;
            return Err(e);
        }
        tracing::warn!(error = %e, tenant = slug, "the switch reported an error but did commit; finishing the move");
    }
    tokio::time::sleep(SWITCH_GRACE).await;
    let mut report = MoveReport { slug: slug.to_string(), from: from.clone(), to, tables: copies, leftover: None };
    if let Err(e) = drop_storage(tenancy.topology(), id, &from, Fence::KeepSealed).await {
        tracing::error!(error = %e, placement = %from.describe(), "the old copy of a moved tenant could not be removed");
        report.leftover = Some(format!("the old copy in {} could not be removed: {e}", from.describe()));
    }
    Ok(report)
}

/// A tenant and the move it may be in the middle of.
#[derive(sqlx::FromRow)]
struct MovingTenant {
    id: Uuid,
    status: String,
    model: String,
    region: String,
    database: Option<String>,
    schema_name: String,
    moving_to_model: Option<String>,
    moving_to_region: Option<String>,
}

/// Ends a move that was interrupted (the process died between sealing and switching): removes
/// the half-made destination, unseals the source and makes the tenant writable where it was.
pub async fn abort_move(tenancy: &Tenancy, slug: &str) -> Result<Placement> {
    let mut tx = crate::db::open(tenancy.control_pool(), false).await?;
    let row: Option<MovingTenant> =
        sqlx::query_as("SELECT id, status, model, region, database, schema_name, moving_to_model, moving_to_region FROM tenants WHERE slug = $1")
            .bind(slug.trim().to_lowercase())
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    let Some(MovingTenant {
        id,
        status,
        model,
        region,
        database,
        schema_name: schema,
        moving_to_model: Some(to_model),
        moving_to_region: Some(to_region),
    }) = row
    else {
        return Err(AppError::Conflict(FieldError::new("slug", format!("{slug} is not being moved; there is nothing to abort."))).into());
    };
    if status != "moving" {
        return Err(AppError::Conflict(FieldError::new("slug", format!("{slug} is not being moved; there is nothing to abort."))).into());
    }
    let from = Placement::from_row(&model, region, database, schema)?;
    let to = Placement::new(id, TenancyModel::parse(&to_model)?, &to_region);
    undo(tenancy, id, &from, &to).await;
    Ok(from)
}

/// Validates the request and marks the tenant `moving`, atomically with respect to other moves.
async fn begin_move(tenancy: &Tenancy, slug: &str, model: TenancyModel, region: &str) -> Result<(Uuid, Placement, Placement)> {
    let mut tx = crate::db::open(tenancy.control_pool(), false).await?;
    let row: Option<(Uuid, String, String, String, Option<String>, String)> =
        sqlx::query_as("SELECT id, status, model, region, database, schema_name FROM tenants WHERE slug = $1 FOR UPDATE")
            .bind(slug.trim().to_lowercase())
            .fetch_optional(&mut *tx)
            .await?;
    let Some((id, status, from_model, from_region, database, schema)) = row else {
        return Err(AppError::NotFound(format!("There is no organization with the URL name \"{slug}\".")).into());
    };
    let refuse = |why: String| -> Error { AppError::Conflict(FieldError::new("slug", why)).into() };
    match status.as_str() {
        "active" => {}
        "moving" => return Err(refuse(format!("{slug} is already being moved. Wait for that move to finish, or abort it."))),
        "suspended" => return Err(refuse(format!("{slug} is suspended. Restore it before moving it."))),
        other => return Err(refuse(format!("{slug} is {other} and can't be moved."))),
    }
    let from = Placement::from_row(&from_model, from_region, database, schema)?;
    let region = if region.trim().is_empty() { from.region.clone() } else { RegionName::parse(region)?.to_string() };
    let topology = tenancy.topology();
    topology.check_offer(model, &region)?;
    // Copying needs the owner role on both sides: FORCE row-level security and the fence.
    topology.owner_options(&from.region, None)?;
    topology.owner_options(&region, None)?;
    let to = Placement::new(id, model, &region);
    let same_place = AppError::Invalid(FieldError::new(
        "model",
        format!("{slug} already lives in {region} as {}. Choose another model or region.", model.label().to_lowercase()),
    ));
    if from == to {
        return Err(same_place.into());
    }
    // Two region names can point at one cluster: then "another region" may be the very same
    // tables, and clearing the destination would delete the source.
    if provision::physical_place(topology, &from).await? == provision::physical_place(topology, &to).await? {
        return Err(same_place.into());
    }
    if model == TenancyModel::Pooled {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM pooled_schemas WHERE region = $1").bind(&region).fetch_optional(&mut *tx).await?;
        if version.unwrap_or(0) < provision::latest_tenant_version() {
            return Err(refuse(format!("Region {region}'s shared tables are not on the latest version. Run `tessera-server migrate` first.")));
        }
    }
    // Into a database of its own takes one of the deployment's places (one it has already if
    // it only changes region).
    if model == TenancyModel::Dedicated && from.model != TenancyModel::Dedicated {
        tenancy.take_dedicated_place(&mut tx).await?;
    }
    let began: bool =
        sqlx::query_scalar("SELECT tenant_move_begin($1, $2, $3)").bind(id).bind(model.as_str()).bind(&region).fetch_one(&mut *tx).await?;
    if !began {
        return Err(refuse("The organization changed state while the move was being prepared. Check `tessera-server tenants` and try again.".into()));
    }
    tx.commit().await?;
    Ok((id, from, to))
}

async fn current_placement(tenancy: &Tenancy, id: Uuid) -> Result<Option<Placement>> {
    let mut tx = crate::db::open(tenancy.control_pool(), false).await?;
    let row: Option<(String, String, Option<String>, String)> =
        sqlx::query_as("SELECT model, region, database, schema_name FROM tenants WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
    tx.commit().await?;
    row.map(|(m, r, d, s)| Placement::from_row(&m, r, d, s)).transpose()
}

/// Seals the source and copies every tenant table into the destination, verified.
async fn copy(tenancy: &Tenancy, id: Uuid, from: &Placement, to: &Placement) -> Result<Vec<TableCopy>> {
    let topology = tenancy.topology();
    if to.model == TenancyModel::Pooled {
        // Leftovers of an earlier, interrupted attempt must not be counted as copied rows.
        drop_storage(topology, id, to, Fence::Remove).await?;
    }
    create_storage(topology, to).await?;

    let mut source = provision::connect(&topology.owner_options(&from.region, from.database.as_deref())?).await?;
    seal(&mut source, id, &from.schema).await?;

    let mut dest = provision::connect(&topology.owner_options(&to.region, to.database.as_deref())?).await?;
    let mut read = source.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *read).await?;
    enter_as_owner(&mut read, &from.schema, id).await?;
    let mut write = dest.begin().await?;
    enter_as_owner(&mut write, &to.schema, id).await?;
    // A destination reused from an earlier attempt may still carry a fence.
    sqlx::query("DELETE FROM tenant_fence WHERE tenant_id = $1").bind(id).execute(&mut *write).await?;

    let tables = tenant_tables(&mut read, &from.schema).await?;
    let dest_tables = tenant_tables(&mut write, &to.schema).await?;
    if tables.iter().collect::<std::collections::BTreeSet<_>>() != dest_tables.iter().collect() {
        return Err(Error::Internal(format!("source tables {tables:?} and destination tables {dest_tables:?} differ; migrate both first")));
    }
    let mut copies = Vec::new();
    for table in &tables {
        // Same columns, same types, same order, or a column could silently stay behind.
        let shape = provision::table_shape(&mut read, &from.schema, table).await?;
        if shape != provision::table_shape(&mut write, &to.schema, table).await? {
            return Err(Error::Internal(format!("table {table} differs between source and destination; migrate both first")));
        }
        let columns = column_list(&mut write, &to.schema, table).await?;
        let stage = format!("move_stage_{table}");
        sqlx::query(&format!("CREATE TEMP TABLE {stage} (LIKE {table}) ON COMMIT DROP")).execute(&mut *write).await?;
        // COPY FROM is not allowed on tables with row-level security; stage, then INSERT. The
        // tenant filter is explicit (RLS is the second guard: an owner may have BYPASSRLS).
        {
            let mut out =
                read.copy_out_raw(&format!("COPY (SELECT {columns} FROM {table} WHERE tenant_id = '{id}') TO STDOUT (FORMAT binary)")).await?;
            let conn: &mut PgConnection = &mut write;
            let mut sink = conn.copy_in_raw(&format!("COPY {stage} ({columns}) FROM STDIN (FORMAT binary)")).await?;
            while let Some(chunk) = out.next().await {
                sink.send(chunk?.as_ref()).await?;
            }
            sink.finish().await?;
        }
        sqlx::query(&format!("INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}")).execute(&mut *write).await?;
        let source_sum = checksum(&mut read, table, &columns, id).await?;
        let dest_sum = checksum(&mut write, table, &columns, id).await?;
        if source_sum != dest_sum {
            return Err(Error::Internal(format!(
                "verification failed for {table}: source has {} rows ({}), destination {} rows ({})",
                source_sum.0, source_sum.1, dest_sum.0, dest_sum.1
            )));
        }
        copies.push(TableCopy { table: table.clone(), rows: source_sum.0, checksum: source_sum.1 });
    }
    write.commit().await?;
    read.commit().await?;
    Ok(copies)
}

/// Points the tenant at its new place, audited with what was verified.
async fn switch(tenancy: &Tenancy, id: Uuid, from: &Placement, to: &Placement, copies: &[TableCopy], request_id: &str) -> Result<()> {
    let version = provision::latest_tenant_version();
    let mut tx = tenancy.system_write(id, SystemActor::Job(request_id.to_string())).await?;
    // The model and region are the ones announced when the move began (`tenant_move_finish`
    // takes them from the row, and refuses storage not named after this tenant).
    let switched: bool = sqlx::query_scalar("SELECT tenant_move_finish($1, $2, $3, $4)")
        .bind(id)
        .bind(to.database.as_deref())
        .bind(&to.schema)
        .bind(version)
        .fetch_one(tx.conn())
        .await?;
    if !switched {
        return Err(Error::Internal("the tenant stopped being in the moving state during the move".into()));
    }
    let rows: serde_json::Map<String, serde_json::Value> =
        copies.iter().map(|c| (c.table.clone(), serde_json::json!({ "rows": c.rows, "checksum": c.checksum }))).collect();
    let entry = AuditEntry::new(
        "tenant.moved",
        "tenant",
        id,
        serde_json::json!({
            "model": { "old": from.model.as_str(), "new": to.model.as_str() },
            "region": { "old": from.region, "new": to.region },
            "verified": rows,
        }),
    );
    tx.commit(entry).await
}

/// Writes the fence in the source, waiting for in-flight writes to finish.
async fn seal(conn: &mut PgConnection, id: Uuid, schema: &str) -> Result<()> {
    let mut tx = conn.begin().await?;
    enter_as_owner(&mut tx, schema, id).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(fence_key(id)).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO tenant_fence (tenant_id, reason) VALUES ($1, 'moving')
         ON CONFLICT (tenant_id) DO UPDATE SET reason = excluded.reason, sealed_at = now()",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Puts things back after a failed move: the destination gone, the source unsealed, the tenant
/// active where it was. Best effort; each step is logged if it fails.
async fn undo(tenancy: &Tenancy, id: Uuid, from: &Placement, to: &Placement) {
    let topology = tenancy.topology();
    if let Err(e) = drop_storage(topology, id, to, Fence::Remove).await {
        tracing::error!(error = %e, placement = %to.describe(), "could not remove a failed move's destination");
    }
    let unseal = async {
        let mut conn = provision::connect(&topology.owner_options(&from.region, from.database.as_deref())?).await?;
        let mut tx = conn.begin().await?;
        enter_as_owner(&mut tx, &from.schema, id).await?;
        sqlx::query("DELETE FROM tenant_fence WHERE tenant_id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    };
    if let Err(e) = unseal.await {
        tracing::error!(error = %e, placement = %from.describe(), "could not unseal the source of a failed move");
    }
    let reactivate = async {
        let mut tx = crate::db::open(tenancy.control_pool(), false).await?;
        sqlx::query("SELECT tenant_move_abort($1)").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    };
    if let Err(e) = reactivate.await {
        tracing::error!(error = %e, "could not reactivate the tenant after a failed move");
    }
}

/// The table's columns in order, quoted, as the destination defines them.
async fn column_list(conn: &mut PgConnection, schema: &str, table: &str) -> Result<String> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(column_name::text) FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(columns.join(", "))
}

/// Row count and an order-independent digest of the tenant's rows in one table.
async fn checksum(conn: &mut PgConnection, table: &str, columns: &str, tenant_id: Uuid) -> Result<(i64, String)> {
    Ok(sqlx::query_as(&format!(
        "SELECT count(*), COALESCE(md5(string_agg(r, E'\\n' ORDER BY r)), md5(''))
           FROM (SELECT ROW({columns})::text AS r FROM {table} WHERE tenant_id = $1) rows"
    ))
    .bind(tenant_id)
    .fetch_one(conn)
    .await?)
}
