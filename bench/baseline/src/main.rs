//! The benchmark's baseline: the least a server can do to show an organization's projects.
//! One connection pool per database, the same query as Tessera's projects page with a plain
//! `WHERE tenant_id` (connected as a role row-level security doesn't filter), the same rows
//! as an HTML list; no session, no membership, no door, no audit. `bench/tenancy.sh` runs it
//! beside Tessera on the same clusters and reports Tessera's page as a ratio of it.
//!
//! `/t/{slug}/projects.json` answers the same rows as JSON: what the REST list and the server
//! function are measured against. `POST /hook` answers 200 to anything: the receiver webhook
//! deliveries go to.
//!
//! Configuration (environment):
//! - `BASELINE_ADDR`: where to listen (`127.0.0.1:port`);
//! - `BASELINE_ORGS`: `slug=database url|schema|tenant id` entries separated by spaces.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Where one organization's projects are: its database, schema and tenant id.
struct Place {
    pool: PgPool,
    query: String,
    tenant: Uuid,
}

#[derive(sqlx::FromRow, serde::Serialize)]
struct ProjectRow {
    id: Uuid,
    name: String,
    description: String,
    created_at: time::OffsetDateTime,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("BASELINE_ADDR")?;
    let mut pools: HashMap<String, PgPool> = HashMap::new();
    let mut places = HashMap::new();
    for entry in std::env::var("BASELINE_ORGS")?.split_whitespace() {
        let (slug, rest) = entry.split_once('=').ok_or("BASELINE_ORGS: slug=url|schema|tenant")?;
        let mut parts = rest.split('|');
        let (url, schema, tenant) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("not a schema name: {schema}").into());
        }
        let pool = match pools.get(url) {
            Some(pool) => pool.clone(),
            None => {
                // The size Tessera's own pools have by default, so neither side waits on
                // connections the other has.
                let pool = PgPoolOptions::new().max_connections(10).connect(url).await?;
                pools.insert(url.to_string(), pool.clone());
                pool
            }
        };
        let query =
            format!("SELECT id, name, description, created_at FROM {schema}.projects WHERE tenant_id = $1 ORDER BY created_at DESC, id LIMIT 500");
        places.insert(slug.to_string(), Place { pool, query, tenant: tenant.parse()? });
    }
    let app =
        Router::new().route("/t/{slug}/projects", get(projects)).route("/t/{slug}/projects.json", get(projects_json)).with_state(Arc::new(places));
    // A webhook receiver that takes every delivery: what webhook throughput is measured against.
    let app = app.route("/hook", axum::routing::post(|_body: axum::body::Bytes| async { StatusCode::OK }));
    axum::serve(tokio::net::TcpListener::bind(&addr).await?, app).await?;
    Ok(())
}

async fn rows(places: &HashMap<String, Place>, slug: &str) -> Result<Vec<ProjectRow>, StatusCode> {
    let place = places.get(slug).ok_or(StatusCode::NOT_FOUND)?;
    sqlx::query_as(&place.query).bind(place.tenant).fetch_all(&place.pool).await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

async fn projects_json(
    State(places): State<Arc<HashMap<String, Place>>>,
    Path(slug): Path<String>,
) -> Result<axum::Json<Vec<ProjectRow>>, StatusCode> {
    Ok(axum::Json(rows(&places, &slug).await?))
}

async fn projects(State(places): State<Arc<HashMap<String, Place>>>, Path(slug): Path<String>) -> Result<Html<String>, StatusCode> {
    let rows = rows(&places, &slug).await?;
    let mut html =
        format!("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Projects · {}</title></head><body><ul>", escape(&slug));
    for row in rows {
        html.push_str(&format!(
            "<li><a href=\"/t/{slug}/projects/{}\">{}</a><p>{}</p><time>{}</time></li>",
            row.id,
            escape(&row.name),
            escape(&row.description),
            row.created_at.date(),
            slug = escape(&slug),
        ));
    }
    html.push_str("</ul></body></html>");
    Ok(Html(html))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
