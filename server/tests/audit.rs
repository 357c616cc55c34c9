//! The audit log as tenant admins and their tools use it: one timeline of both logs, filtered
//! and paged; exports streamed as CSV and JSON Lines; the REST API for SIEM pulls; tamper
//! evidence that names what the database owner edited, deleted or reordered; and retention.

mod common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, Executor};
use tessera_domain::audit::AuditIntegrity;

/// The viewer's server function with `filters` (name, value).
async fn timeline(browser: &common::Browser, slug: &str, filters: &[(&str, &str)]) -> common::Response {
    let mut form = vec![("slug", slug)];
    form.extend_from_slice(filters);
    browser.call("audit_log", &form).await
}

fn actions(page: &Value) -> Vec<String> {
    page["page"]["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

async fn integrity(app: &TestApp, slug: &str) -> AuditIntegrity {
    let mut checked = tessera_backend::audit::verify(&app.backend.tenancy, Some(slug)).await.unwrap();
    assert_eq!(checked.len(), 1);
    checked.remove(0).1.expect("the organization could be checked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reads_one_timeline_of_the_team_and_the_data_filters_it_and_pages_through_it() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("ledger").await;
    let member = app.signed_up("mia@ledger.test").await;
    owner.invite_and_accept("ledger", "mia@ledger.test", "member", &member).await;
    member.add_project("ledger", "Apollo").await;
    let apollo = app.project_id("Apollo").await;
    let r = owner.call("update_project", &[("slug", "ledger"), ("id", &apollo), ("name", "Artemis"), ("description", "to the moon")]).await;
    assert!(r.status.is_success(), "{}", r.body);

    // One timeline, newest first, with the team's records (control plane) and the data's.
    let r = timeline(&owner, "ledger", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = r.json();
    let seen = actions(&page);
    for expected in ["project.updated", "project.created", "membership.added", "invitation.sent", "tenant.created"] {
        assert!(seen.iter().any(|a| a == expected), "{expected} in {seen:?}");
    }
    let logs: Vec<&str> = page["page"]["events"].as_array().unwrap().iter().map(|e| e["log"].as_str().unwrap()).collect();
    assert!(logs.contains(&"organization") && logs.contains(&"data"), "{logs:?}");
    let times: Vec<&str> = page["page"]["events"].as_array().unwrap().iter().map(|e| e["occurred_at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    assert!(page["page"]["next_cursor"].is_null(), "one page holds it all");

    // The update's detail: who, from where, and each changed field before and after.
    let updated = page["page"]["events"].as_array().unwrap().iter().find(|e| e["action"] == "project.updated").unwrap().clone();
    assert_eq!(updated["actor"]["type"], "user");
    assert_eq!(updated["actor"]["name"], "owner@ledger.test");
    assert_eq!(updated["targets"][0]["type"], "project");
    assert_eq!(updated["targets"][0]["id"], apollo.as_str());
    assert_eq!(updated["targets"][0]["name"], "Artemis");
    assert_eq!(updated["metadata"]["changes"]["name"], serde_json::json!({ "old": "Apollo", "new": "Artemis" }));
    assert!(updated["context"]["ip"].as_str().is_some_and(|ip| ip == "127.0.0.1"), "{updated}");
    assert!(updated["context"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{updated}");

    // Filters: by kind of action, by person, by date, by address; a wrong one says how to fix it.
    assert_eq!(actions(&timeline(&owner, "ledger", &[("action", "project")]).await.json()), ["project.updated", "project.created"]);
    assert_eq!(actions(&timeline(&owner, "ledger", &[("action", "project.created")]).await.json()), ["project.created"]);
    let mia = app.user_id("mia@ledger.test").await;
    let by_mia = actions(&timeline(&owner, "ledger", &[("actor", &mia)]).await.json());
    assert!(by_mia.contains(&"project.created".to_string()) && !by_mia.contains(&"project.updated".to_string()), "{by_mia:?}");
    assert!(actions(&timeline(&owner, "ledger", &[("from", "2999-01-01")]).await.json()).is_empty());
    assert_eq!(actions(&timeline(&owner, "ledger", &[("target", &apollo)]).await.json()), ["project.updated", "project.created"]);
    assert!(actions(&timeline(&owner, "ledger", &[("ip", "10.0.0.0/8")]).await.json()).is_empty());
    assert!(!actions(&timeline(&owner, "ledger", &[("ip", "127.0.0.0/8")]).await.json()).is_empty());
    let wrong = timeline(&owner, "ledger", &[("ip", "not-an-address")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.error_field().as_deref(), Some("ip"));
    let wrong = timeline(&owner, "ledger", &[("to", "2026-02-30")]).await;
    assert_eq!((wrong.status, wrong.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("to")));
    // Moments the log can't hold are mistakes too, not crashes.
    let wrong = timeline(&owner, "ledger", &[("to", "9999-12-31T23:59:59-01:00")]).await;
    assert_eq!((wrong.status, wrong.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("to")));
    let wrong = timeline(&owner, "ledger", &[("cursor", "-300000000000000000.00000000000000000000000000000000")]).await;
    assert_eq!((wrong.status, wrong.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor")));

    // Members don't read the audit log.
    assert_eq!(timeline(&member, "ledger", &[]).await.status, StatusCode::FORBIDDEN);

    // Paging: 60 more events come as 50 and the rest, each exactly once, following the cursor.
    for i in 0..60 {
        owner.add_project("ledger", &format!("Bulk {i}")).await;
    }
    let first = timeline(&owner, "ledger", &[]).await.json();
    assert_eq!(first["page"]["events"].as_array().unwrap().len(), 50);
    let cursor = first["page"]["next_cursor"].as_str().expect("a next page").to_string();
    let second = timeline(&owner, "ledger", &[("cursor", &cursor)]).await.json();
    let ids = |page: &Value| page["page"]["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let mut all = ids(&first);
    all.extend(ids(&second));
    let total = app.count("SELECT count(*) FROM audit_log").await + app.count("SELECT count(*) FROM shared.audit_log").await;
    assert_eq!(all.len() as i64, total, "every event once");
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no event twice");
    assert!(second["page"]["next_cursor"].is_null());

    // Both hash chains check out, and the viewer says so.
    let r = owner.call("check_audit_integrity", &[("slug", "ledger")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["records"].as_i64(), Some(total));
    assert_eq!(r.json()["breaks"], serde_json::json!([]));
    let page = owner.get("/t/ledger/settings/audit?action=project.updated").await;
    assert!(page.body.contains("Check integrity") && !page.body.contains("Integrity: verified"), "checked on request: {}", page.body);
    assert!(page.body.contains("Artemis"));
    let page = owner.get("/t/ledger/settings/audit?action=project.updated&integrity=check").await;
    assert!(page.body.contains("Integrity: verified"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filtered_log_downloads_as_csv_and_json_lines_and_pulls_over_rest_with_a_scoped_key() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("export").await;
    for name in ["=HYPERLINK(\"http://evil\")", "Plain, with a comma"] {
        owner.add_project("export", name).await;
    }

    // CSV: a header, one row per matching event, cells a spreadsheet would run defused.
    let r = owner.get("/t/export/settings/audit/export.csv?action=project").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(r.headers["content-disposition"].to_str().unwrap().contains("audit-log-export-"));
    let mut reader = csv::Reader::from_reader(r.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(&header[..3], ["id", "occurred_at", "action"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let names: Vec<&str> = rows.iter().map(|row| &row[10]).collect();
    assert_eq!(names, ["Plain, with a comma", "'=HYPERLINK(\"http://evil\")"]);
    assert!(rows.iter().all(|row| &row[2] == "project.created" && &row[3] == "user" && &row[11] == "127.0.0.1"));

    // JSON Lines: one event per line, in the documented shape.
    let r = owner.get("/t/export/settings/audit/export.jsonl").await;
    assert_eq!(r.status, StatusCode::OK);
    let events: Vec<Value> = r.body.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(events.len() >= 4, "{}", r.body);
    for field in ["id", "action", "occurred_at", "actor", "targets", "context", "metadata", "log", "seq"] {
        assert!(events.iter().all(|e| e.get(field).is_some()), "{field}");
    }
    // Each export is itself on the record, with its filters.
    let recorded: Vec<Value> =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE action = 'audit_log.exported' ORDER BY seq").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0]["format"]["new"], "csv");
    assert_eq!(recorded[0]["filters"]["new"]["action"], "project");
    // Unknown formats and filters are refused, not ignored.
    assert_eq!(owner.get("/t/export/settings/audit/export.xlsx").await.status, StatusCode::NOT_FOUND);
    let r = owner.get("/t/export/settings/audit/export.csv?acton=project").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // REST: an API key with the audit scope pages through with the same filters.
    let r = owner.call("create_api_key", &[("slug", "export"), ("name", "SIEM"), ("scopes[]", "audit_log:read"), ("expires_in_days", "30")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let siem = r.json()["key"].as_str().unwrap().to_string();
    let r = owner.call("create_api_key", &[("slug", "export"), ("name", "Reader"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    let reader = r.json()["key"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let get = |path: String, key: String| {
        let client = client.clone();
        let base = app.base.clone();
        async move {
            let r = client.get(format!("{base}{path}")).bearer_auth(key).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, first) = get("/api/v1/orgs/export/audit-events?action=project&limit=1".into(), siem.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["events"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = get(format!("/api/v1/orgs/export/audit-events?action=project&limit=1&cursor={cursor}"), siem.clone()).await;
    assert_eq!(second["events"].as_array().unwrap().len(), 1);
    assert_ne!(first["events"][0]["id"], second["events"][0]["id"]);
    assert!(second["next_cursor"].is_null());
    let (status, body) = get("/api/v1/orgs/export/audit-events?limit=500".into(), siem.clone()).await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit")));
    let (status, _) = get("/api/v1/orgs/export/audit-events?since=yesterday".into(), siem.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = get("/api/v1/orgs/export/audit-events".into(), reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"].as_str().unwrap().contains("audit_log:read"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hash_chain_names_a_record_the_database_owner_edited_deleted_or_reordered() {
    let app = TestApp::spawn().await;
    let mut owners = std::collections::HashMap::new();
    for slug in ["edited", "deleted", "reordered"] {
        let owner = app.owner_of(slug).await;
        for i in 0..4 {
            owner.add_project(slug, &format!("{slug} {i}")).await;
        }
        let checked = integrity(&app, slug).await;
        assert!(checked.verified(), "{slug}: {:?}", checked.breaks);
        owners.insert(slug, owner);
    }
    let owner = app.owner_of("untouched").await;
    owner.add_project("untouched", "Calm").await;

    // The app itself can neither rewrite history nor forge a link.
    let mut app_role = app.app_conn_for("edited").await;
    let edited = app.tenant_id("edited").await;
    let mut tx = app_role.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{edited}'").as_str()).await.unwrap();
    assert!(tx.execute("UPDATE audit_log SET action = 'x'").await.is_err());
    tx.rollback().await.unwrap();
    let mut tx = app_role.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{edited}'").as_str()).await.unwrap();
    let forged = tx.execute("INSERT INTO audit_log (action, target_type, target_id, seq, prev_hash, hash) VALUES ('x', 'y', 'z', 1, '', '')").await;
    assert!(forged.is_err(), "the chain's columns are the trigger's alone");
    tx.rollback().await.unwrap();

    // An edit, as the owner of the database.
    let mut place = app.inspect_tenant("edited").await;
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM audit_log WHERE tenant_id = $1 AND action = 'project.created' ORDER BY seq LIMIT 1 OFFSET 1")
        .bind(edited)
        .fetch_one(&mut place)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET changes = '{\"name\": {\"new\": \"innocent\"}}' WHERE tenant_id = $1 AND seq = $2")
        .bind(edited)
        .bind(seq)
        .execute(&mut place)
        .await
        .unwrap();
    let checked = integrity(&app, "edited").await;
    assert_eq!(checked.breaks.len(), 1, "{:?}", checked.breaks);
    assert_eq!((checked.breaks[0].kind.as_str(), checked.breaks[0].seq), ("changed", seq));
    assert!(checked.breaks[0].message.contains(&format!("record #{seq} (project.created")), "{}", checked.breaks[0].message);
    // The viewer says so too, to the organization's own admins.
    let r = owners["edited"].call("check_audit_integrity", &[("slug", "edited")]).await;
    assert_eq!(r.json()["breaks"][0]["kind"], "changed", "{}", r.body);

    // A deletion in the middle, and one of the newest.
    let deleted = app.tenant_id("deleted").await;
    let mut place = app.inspect_tenant("deleted").await;
    let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM audit_log WHERE tenant_id = $1").bind(deleted).fetch_one(&mut place).await.unwrap();
    sqlx::query("DELETE FROM audit_log WHERE tenant_id = $1 AND seq IN (2, $2)").bind(deleted).bind(last).execute(&mut place).await.unwrap();
    let checked = integrity(&app, "deleted").await;
    let kinds: Vec<(&str, i64)> = checked.breaks.iter().map(|b| (b.kind.as_str(), b.seq)).collect();
    assert_eq!(kinds, [("missing", 2), ("truncated", last)], "{:?}", checked.breaks);

    // Two records swapped in the chain's order.
    let reordered = app.tenant_id("reordered").await;
    let mut place = app.inspect_tenant("reordered").await;
    place.execute(format!("UPDATE audit_log SET seq = -seq WHERE tenant_id = '{reordered}' AND seq IN (2, 3)").as_str()).await.unwrap();
    place
        .execute(format!("UPDATE audit_log SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE tenant_id = '{reordered}' AND seq < 0").as_str())
        .await
        .unwrap();
    let checked = integrity(&app, "reordered").await;
    let kinds: Vec<(&str, i64)> = checked.breaks.iter().map(|b| (b.kind.as_str(), b.seq)).collect();
    // The swapped pair, and the record after them, whose link now points at the wrong one.
    assert_eq!(kinds, [("out_of_order", 2), ("out_of_order", 3), ("out_of_order", 4)], "{:?}", checked.breaks);

    // The organization's own log in the control plane is chained the same way.
    sqlx::query("UPDATE audit_log SET ip = '198.51.100.1' WHERE tenant_id = $1 AND action = 'tenant.created'")
        .bind(reordered)
        .execute(&app.inspect)
        .await
        .unwrap();
    let checked = integrity(&app, "reordered").await;
    assert!(checked.breaks.iter().any(|b| b.kind == "changed" && b.log == tessera_domain::audit::AuditLogName::Organization), "{:?}", checked.breaks);

    // Nobody else's chain is affected.
    assert!(integrity(&app, "untouched").await.verified());
    let all = tessera_backend::audit::verify(&app.backend.tenancy, None).await.unwrap();
    let failing: Vec<&str> = all.iter().filter(|(_, i)| !i.as_ref().unwrap().verified()).map(|(slug, _)| slug.as_str()).collect();
    assert_eq!(failing, ["deleted", "edited", "reordered"]);
    assert!(tessera_backend::audit::verify(&app.backend.tenancy, Some("nobody")).await.is_err());
}

/// Moves `slug`'s records (both logs) `days` into the past, re-linking the chains as if they had
/// been written then: what time passing would have done.
async fn age_records(app: &TestApp, slug: &str, days: i32) {
    let tenant = app.tenant_id(slug).await;
    let rechain = format!(
        "DO $$
         DECLARE r audit_log%ROWTYPE; previous bytea;
         BEGIN
           SELECT anchor_hash INTO previous FROM audit_chain WHERE tenant_id = '{tenant}';
           UPDATE audit_log SET occurred_at = occurred_at - interval '{days} days' WHERE tenant_id = '{tenant}';
           FOR r IN SELECT * FROM audit_log WHERE tenant_id = '{tenant}' ORDER BY seq LOOP
             r.prev_hash := previous;
             r.hash := sha256(convert_to(audit_chain_text(r), 'UTF8'));
             UPDATE audit_log SET prev_hash = r.prev_hash, hash = r.hash WHERE id = r.id;
             previous := r.hash;
           END LOOP;
           UPDATE audit_chain SET last_hash = previous WHERE tenant_id = '{tenant}';
         END $$"
    );
    app.inspect.execute(rechain.as_str()).await.unwrap();
    let mut place = app.inspect_tenant(slug).await;
    place.execute(rechain.as_str()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_older_than_the_retention_period_are_pruned_and_what_remains_still_verifies() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("keeper").await;
    let admin = app.signed_up("ada@keeper.test").await;
    owner.invite_and_accept("keeper", "ada@keeper.test", "admin", &admin).await;
    owner.add_project("keeper", "Old work").await;

    // Owners choose the period, within bounds; Admins read it but can't shorten the trail.
    let page = owner.call("audit_log", &[("slug", "keeper")]).await.json();
    assert_eq!(page["retention_days"], 365);
    let r = owner.call("set_audit_retention", &[("slug", "keeper"), ("days", "30")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("days")));
    assert!(r.error_message().contains("90"), "{}", r.error_message());
    assert_eq!(admin.call("set_audit_retention", &[("slug", "keeper"), ("days", "90")]).await.status, StatusCode::FORBIDDEN);
    let r = owner.call("set_audit_retention", &[("slug", "keeper"), ("days", "120")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(admin.call("audit_log", &[("slug", "keeper")]).await.json()["retention_days"], 120);

    // Everything so far happened 200 days ago; then something happens today.
    age_records(&app, "keeper", 200).await;
    assert!(integrity(&app, "keeper").await.verified());
    owner.add_project("keeper", "New work").await;
    let tenant = app.tenant_id("keeper").await;
    let before_control = app.count(&format!("SELECT count(*) FROM audit_log WHERE tenant_id = '{tenant}'")).await;
    assert!(before_control > 0);

    let pruned = tessera_backend::audit::retention::prune_organization(&app.backend, tenant).await.unwrap();
    assert_eq!(pruned.organization, before_control, "every control-plane record was old");
    assert_eq!(pruned.data, 1, "the old project's record; today's stays");
    let left: Vec<String> = sqlx::query_scalar("SELECT action FROM shared.audit_log WHERE tenant_id = $1 ORDER BY seq")
        .bind(tenant)
        .fetch_all(&app.inspect)
        .await
        .unwrap();
    assert_eq!(left, ["project.created", "audit_log.pruned"]);
    let checked = integrity(&app, "keeper").await;
    assert!(checked.verified(), "{:?}", checked.breaks);
    assert!(checked.pruned_at.is_some());
    // Running again removes nothing more (and records nothing).
    assert_eq!(tessera_backend::audit::retention::prune_organization(&app.backend, tenant).await.unwrap(), Default::default());

    // The database keeps 90 days whatever it is asked, even by the app role directly.
    age_records(&app, "keeper", 60).await;
    let mut app_role = app.app_conn_for("keeper").await;
    let mut tx = app_role.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{tenant}'").as_str()).await.unwrap();
    let removed: i64 = sqlx::query_scalar("SELECT audit_prune(1)").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(removed, 0, "60-day-old records are inside the 90-day minimum");
    tx.rollback().await.unwrap();

    // The daily job queues a prune for every organization.
    assert!(tessera_backend::audit::retention::prune_all(&app.backend).await.unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_logs_chain_their_records_with_the_same_functions() {
    // The control plane and tenant data have migrations of their own; the chain's functions
    // are written twice and must not drift apart (the Rust check recomputes one text for both).
    let app = TestApp::spawn().await;
    let source = |schema: &'static str| {
        let inspect = app.inspect.clone();
        async move {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT p.proname::text, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname = $1 AND p.proname IN ('audit_chain_field', 'audit_chain_text', 'audit_chain_link', 'audit_chain_save')
                  ORDER BY 1",
            )
            .bind(schema)
            .fetch_all(&inspect)
            .await
            .unwrap();
            rows
        }
    };
    let control = source("public").await;
    assert_eq!(control.len(), 4, "{control:?}");
    assert_eq!(control, source("shared").await);
}
