//! A guard against forgetting the audit trail: every server function the app registers and every
//! REST operation its OpenAPI document lists is called by an Owner (the REST ones with the
//! Owner's API key) with plausible input for one organization. Whatever changes what the
//! organization has must have answered with success (a refusal changes nothing) and written an
//! audit record naming the actor, the organization, where the request came from and what
//! changed. A new endpoint is checked the day it is registered.

mod common;

use common::{every_field, TestApp};
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Tables that change by themselves or hold no organization state a person sets: queues and
/// counters, sign-in handshakes, per-person notices and preferences, the delivery log of
/// webhooks, and the audit trail itself. Jobs write the webhook tables after an audited change,
/// while later calls run, so they can't be told apart here: sending a test event, resending and
/// replaying (which only add to them) are audited and checked in `webhooks.rs` instead.
const BOOKKEEPING: &[&str] = &[
    "audit_log",
    "idp_group_syncs",
    "audit_chain",
    "outbox",
    "job_schedules",
    "api_usage",
    "notifications",
    "notification_preferences",
    "saml_assertions_seen",
    "saml_requests",
    "sessions",
    "sso_handoffs",
    "sso_refusals",
    "billing_notices",
    "billing_invoices",
    "webhook_events",
    "webhook_deliveries",
    "webhook_attempts",
    "tenant_fence",
];

/// Columns that move on their own: when a key was last used, when deliveries began failing.
const MOVING: &[&str] = &["last_used_at", "failing_since", "last_failed_at", "disabled_reason"];

/// Everything the organization has, table by table, as rows of JSON.
async fn inventory(app: &TestApp, place: &mut PgConnection, tenant: Uuid) -> BTreeMap<String, String> {
    let of_tenant = "SELECT table_name::text FROM information_schema.columns
                      WHERE table_schema = current_schema() AND column_name = 'tenant_id' ORDER BY table_name";
    let rows_of = |table: &str, key: &str| {
        format!("SELECT string_agg((to_jsonb(r) - $2::text[])::text, '|' ORDER BY (to_jsonb(r) - $2::text[])::text) FROM {table} r WHERE {key} = $1")
    };
    let moving: Vec<String> = MOVING.iter().map(|c| c.to_string()).collect();
    let mut inventory = BTreeMap::new();
    let control: Vec<String> = sqlx::query_scalar(of_tenant).fetch_all(&app.inspect).await.unwrap();
    for table in control.iter().filter(|t| !BOOKKEEPING.contains(&t.as_str())) {
        let rows: Option<String> =
            sqlx::query_scalar(&rows_of(&format!("public.{table}"), "tenant_id")).bind(tenant).bind(&moving).fetch_one(&app.inspect).await.unwrap();
        inventory.insert(format!("control {table}"), rows.unwrap_or_default());
    }
    let rows: Option<String> = sqlx::query_scalar(&rows_of("public.tenants", "id")).bind(tenant).bind(&moving).fetch_one(&app.inspect).await.unwrap();
    inventory.insert("control tenants".into(), rows.unwrap_or_default());
    let own: Vec<String> = sqlx::query_scalar(of_tenant).fetch_all(&mut *place).await.unwrap();
    assert!(own.iter().any(|t| t == "projects"), "the organization's tables are found: {own:?}");
    for table in own.iter().filter(|t| !BOOKKEEPING.contains(&t.as_str())) {
        let rows: Option<String> = sqlx::query_scalar(&rows_of(table, "tenant_id")).bind(tenant).bind(&moving).fetch_one(&mut *place).await.unwrap();
        inventory.insert(format!("data {table}"), rows.unwrap_or_default());
    }
    inventory
}

/// Where each log's chain stands (its newest record's place).
async fn heads(app: &TestApp, place: &mut PgConnection, tenant: Uuid) -> (i64, i64) {
    let newest = "SELECT COALESCE(max(seq), 0) FROM audit_log WHERE tenant_id = $1";
    let control: i64 = sqlx::query_scalar(newest).bind(tenant).fetch_one(&app.inspect).await.unwrap();
    let data: i64 = sqlx::query_scalar(newest).bind(tenant).fetch_one(&mut *place).await.unwrap();
    (control, data)
}

/// The records written since `since`: (action, actor, API key, ip, request id, changes, log).
type Record = (String, Option<Uuid>, Option<Uuid>, Option<String>, Option<String>, Value, String);

async fn records_since(app: &TestApp, place: &mut PgConnection, tenant: Uuid, since: (i64, i64)) -> Vec<Record> {
    let query = |log: &str| {
        format!("SELECT action, actor_id, actor_api_key_id, host(ip), request_id, changes, '{log}' FROM audit_log WHERE tenant_id = $1 AND seq > $2 ORDER BY seq")
    };
    let mut records: Vec<Record> = sqlx::query_as(&query("organization")).bind(tenant).bind(since.0).fetch_all(&app.inspect).await.unwrap();
    records.extend(sqlx::query_as::<_, Record>(&query("data")).bind(tenant).bind(since.1).fetch_all(&mut *place).await.unwrap());
    records
}

/// What changed between two inventories, by table.
fn changed_tables(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    after.iter().filter(|(table, rows)| before.get(*table) != Some(*rows)).map(|(table, _)| table.clone()).collect()
}

/// Checks one call: what it changed is on the record, or it changed nothing.
fn check(what: &str, ok: bool, changed: &[String], records: &[Record], owner: Uuid, key: Option<Uuid>) {
    if changed.is_empty() {
        return;
    }
    assert!(ok, "{what} was refused but changed {changed:?}: a refusal must change nothing");
    assert!(!records.is_empty(), "{what} changed {changed:?} without an audit record");
    // A change to the organization's data is on its data log; to its team or settings, on
    // the organization log.
    for (plane, log) in [("data ", "data"), ("control ", "organization")] {
        if changed.iter().any(|table| table.starts_with(plane)) {
            assert!(records.iter().any(|r| r.6 == log), "{what} changed {changed:?} with no record in the {log} log");
        }
    }
    for (action, actor, via, ip, request_id, changes, _) in records {
        assert_eq!(*actor, Some(owner), "{what}: {action} names the person who acted");
        if key.is_some() {
            assert_eq!(*via, key, "{what}: {action} names the API key that acted");
        }
        assert!(ip.is_some(), "{what}: {action} records where the request came from");
        assert!(request_id.as_deref().is_some_and(|id| !id.is_empty()), "{what}: {action} records the request id");
        assert!(changes.as_object().is_some_and(|c| !c.is_empty()), "{what}: {action} records what changed: {changes}");
    }
}

/// The newest thing of the kind a function's name says it acts on (an API key, a webhook
/// endpoint, an invitation; a domain, by name, unless the function adds one), as the field
/// that names it, if the organization has one.
async fn newest_of(app: &TestApp, place: &mut PgConnection, tenant: Uuid, function: &str) -> Option<(&'static str, String)> {
    let (field, column, table, in_data) = if function.contains("api_key") {
        ("id", "id::text", "api_keys", false)
    } else if function.contains("invitation") {
        ("id", "id::text", "invitations", false)
    } else if function.contains("domain") && !function.starts_with("add") {
        ("domain", "domain", "tenant_domains", false)
    } else if function.contains("webhook") {
        ("id", "id::text", "webhook_endpoints", true)
    } else if function.contains("group") && !function.starts_with("create") {
        ("group", "id::text", "groups", true)
    } else if function == "unshare_project" {
        ("grant", "id::text", "project_grants", true)
    } else {
        return None;
    };
    let newest = if table == "project_grants" { "granted_at" } else { "created_at" };
    let query = format!("SELECT {column} FROM {table} WHERE tenant_id = $1 ORDER BY {newest} DESC LIMIT 1");
    let found: Option<String> = if in_data {
        sqlx::query_scalar(&query).bind(tenant).fetch_optional(&mut *place).await.unwrap()
    } else {
        sqlx::query_scalar(&query).bind(tenant).fetch_optional(&app.inspect).await.unwrap()
    };
    found.map(|value| (field, value))
}

/// Calls that take things away or end the session run last, so the rest find something to act on.
fn ends_something(name: &str) -> bool {
    ["delete", "remove", "revoke", "leave", "log_out", "sign_out", "withdraw", "disconnect", "transfer"].iter().any(|w| name.contains(w))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_through_any_endpoint_is_on_the_audit_record() {
    let app = TestApp::spawn().await;
    let mut owner = app.owner_of("guard").await;
    let mate = app.signed_up("mate@guard.test").await;
    owner.invite_and_accept("guard", "mate@guard.test", "member", &mate).await;
    owner.add_project("guard", "Ledger").await;
    let project = app.project_id("Ledger").await;
    let r = owner.call("create_document", &[("slug", "guard"), ("project", &project), ("title", "Notes"), ("body", "Hello")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let document: String =
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM shared.documents WHERE title = 'Notes'").fetch_one(&app.inspect).await.unwrap().to_string();
    let mate_id = app.user_id("mate@guard.test").await;
    let owner_id: Uuid = app.user_id("owner@guard.test").await.parse().unwrap();
    let tenant = app.tenant_id("guard").await;
    let mut place = app.inspect_tenant("guard").await;

    let mut functions: Vec<String> =
        leptos::server_fn::axum::server_fn_paths().map(|(path, _)| path.trim_start_matches("/api/").to_string()).collect();
    functions.sort();
    functions.dedup();
    // Ending the organization itself comes very last.
    functions.sort_by_key(|f| (ends_something(f), f.contains("org")));
    let (mut changing, mut unchanged) = (Vec::new(), Vec::new());
    for (n, function) in functions.iter().enumerate() {
        let tag = format!("g{n}");
        let mut form = every_field("guard", &project, &mate_id, &tag);
        // `id` names what the function is about: the newest of that kind the organization has.
        let named = if function.contains("document") { Some(("id", document.clone())) } else { newest_of(&app, &mut place, tenant, function).await };
        if let Some((field, value)) = named {
            form.iter_mut().filter(|(k, _)| *k == field).for_each(|(_, v)| *v = value.clone());
        }
        // Not the Owner role for a colleague: later calls need an Owner who is still the only one.
        form.iter_mut().filter(|(k, _)| *k == "role" || *k == "default_role").for_each(|(_, v)| *v = "admin".into());
        form.iter_mut().filter(|(k, _)| *k == "confirm").for_each(|(_, v)| *v = "guard".into());
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (before, since) = (inventory(&app, &mut place, tenant).await, heads(&app, &mut place, tenant).await);
        let r = owner.call(function, &form).await;
        let after = inventory(&app, &mut place, tenant).await;
        let changed = changed_tables(&before, &after);
        let records = records_since(&app, &mut place, tenant, since).await;
        assert!(!r.status.is_server_error(), "{function} failed: {} {}", r.status, r.body);
        let ok = r.status.is_success() || r.status.is_redirection();
        check(&format!("{function} ({} {})", r.status, r.body.chars().take(200).collect::<String>()), ok, &changed, &records, owner_id, None);
        if changed.is_empty() {
            unchanged.push(function.clone());
        } else {
            changing.push(function.clone());
        }
        // Some calls sign the Owner out (that's their job); they sign in again.
        if owner.call("my_session", &[]).await.json().is_null() {
            owner = app.browser();
            let r = owner.call("log_in", &[("email", "owner@guard.test"), ("password", common::PASSWORD)]).await;
            assert!(r.status.is_success() || r.status.is_redirection(), "the Owner signs in again: {} {}", r.status, r.body);
        }
    }

    // The REST API's changing operations, with an API key of the Owner's (the organization
    // back from its scheduled deletion, if a call above scheduled it).
    let _ = owner.call("cancel_org_deletion", &[("slug", "guard")]).await;
    owner.add_project("guard", "Ledger 2").await;
    let project = app.project_id("Ledger 2").await;
    let r = owner.call("create_document", &[("slug", "guard"), ("project", &project), ("title", "Notes 2"), ("body", "Hello")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let document: String =
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM shared.documents WHERE title = 'Notes 2'").fetch_one(&app.inspect).await.unwrap().to_string();
    let r = owner
        .call(
            "create_api_key",
            &[
                ("slug", "guard"),
                ("name", "Guard"),
                ("scopes[]", "projects:write"),
                ("scopes[]", "documents:write"),
                ("scopes[]", "members:read"),
                ("expires_in_days", "1"),
            ],
        )
        .await;
    let key = r.json()["key"].as_str().unwrap_or_else(|| panic!("an API key: {}", r.body)).to_string();
    let key_id: Uuid = r.json()["summary"]["id"].as_str().unwrap().parse().unwrap();
    let api: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base)).await.unwrap().json().await.unwrap();
    let client = reqwest::Client::new();
    let mut operations: Vec<(String, String)> = Vec::new();
    for (template, item) in api["paths"].as_object().expect("the document lists paths") {
        for (method, _) in item.as_object().unwrap().iter().filter(|(m, _)| ["post", "put", "patch", "delete"].contains(&m.as_str())) {
            operations.push((method.clone(), template.clone()));
        }
    }
    // Deletions last, the deepest first (a project's deletion takes its documents with it).
    operations.sort_by_key(|(method, template)| (method == "delete", std::cmp::Reverse(template.len())));
    for (n, (method, template)) in operations.iter().enumerate() {
        if template.starts_with("/api/v1/auth/") {
            continue; // signing in and out: the account's own trail (security_events), no organization
        }
        let last = if template.contains("/documents/") { document.as_str() } else { project.as_str() };
        let mut path = template.replace("{slug}", "guard").replace("{project}", &project);
        while let (Some(start), Some(end)) = (path.find('{'), path.find('}')) {
            path.replace_range(start..=end, last);
        }
        let body = if template.contains("/documents") {
            serde_json::json!({ "title": format!("Via API {n}"), "body": "from a script" })
        } else {
            serde_json::json!({ "name": format!("Via API {n}"), "description": "from a script" })
        };
        let (before, since) = (inventory(&app, &mut place, tenant).await, heads(&app, &mut place, tenant).await);
        let r =
            client.request(method.to_uppercase().parse().unwrap(), format!("{}{path}", app.base)).bearer_auth(&key).json(&body).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(!status.is_server_error(), "{method} {path} failed: {status} {text}");
        let after = inventory(&app, &mut place, tenant).await;
        let changed = changed_tables(&before, &after);
        let records = records_since(&app, &mut place, tenant, since).await;
        check(&format!("{method} {path} ({status} {text})"), status.is_success(), &changed, &records, owner_id, Some(key_id));
        if !changed.is_empty() {
            changing.push(format!("{method} {template}"));
        }
    }

    println!("{} endpoints changed the organization, each on the record: {changing:?}", changing.len());
    println!("{} changed nothing here: {unchanged:?}", unchanged.len());
    // Not a test that passes by calling nothing: the ordinary changes must have happened.
    for expected in [
        "create_project",
        "update_project",
        "invite_member",
        "change_role",
        "create_api_key",
        "set_audit_retention",
        "delete_project",
        "share_project",
        "set_project_visibility",
        "create_group",
        "update_group",
        "delete_group",
        "create_role",
    ] {
        assert!(changing.iter().any(|f| f == expected), "{expected} changed the organization in this run: {changing:?}");
    }
    for expected in ["revoke_api_key", "withdraw_invitation", "delete_webhook", "remove_sso_domain", "post ", "patch ", "delete "] {
        assert!(changing.iter().any(|f| f.starts_with(expected)), "{expected} changed the organization in this run: {changing:?}");
    }
}
