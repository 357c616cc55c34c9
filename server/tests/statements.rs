//! What a page view costs the database: every statement the server sends while it renders a
//! signed-in organization page, counted from sqlx's own statement log (tracing target
//! `sqlx::query`). A test binary of its own: its global subscriber must see only this server.

mod common;

use common::TestApp;
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The statements sqlx reports, in order (their first line).
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

impl Statements {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The statement as sqlx logs it: its full text when it has one, else its summary.
struct Summary(Option<String>);

impl tracing::field::Visit for Summary {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &value)
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = || format!("{value:?}").trim_matches('"').replace("\\n", " ").split_whitespace().collect::<Vec<_>>().join(" ");
        match field.name() {
            "db.statement" if !text().is_empty() => self.0 = Some(text()),
            "summary" if self.0.is_none() => self.0 = Some(text()),
            _ => {}
        }
    }
}

/// Whether a transaction `db::open` reports is read-only.
struct ReadOnly(bool);

impl tracing::field::Visit for ReadOnly {
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        if field.name() == "read_only" {
            self.0 = value;
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        // sqlx doesn't log a transaction's BEGIN; the one place that opens them does.
        let statement = if event.metadata().target() == "tessera::db" {
            let mut read_only = ReadOnly(false);
            event.record(&mut read_only);
            if read_only.0 { "BEGIN READ ONLY" } else { "BEGIN" }.to_string()
        } else {
            let mut summary = Summary(None);
            event.record(&mut summary);
            summary.0.unwrap_or_default()
        };
        self.0.lock().unwrap().push(statement);
    }
}

fn count_statements() -> Statements {
    let statements = Statements::default();
    let only_queries = tracing_subscriber::filter::Targets::new()
        .with_target("sqlx::query", tracing::Level::TRACE)
        .with_target("tessera::db", tracing::Level::DEBUG);
    tracing_subscriber::registry().with(statements.clone().with_filter(only_queries)).init();
    statements
}

/// What a signed-in view of an organization's projects page may cost, session lookup and all,
/// in statements the request waits for. Exact, so the budget comes down with every trip the
/// door saves (the first measurement, in issue 9, was 43 statements in 10 transactions): the
/// session with its context in one statement, then the page's one tenant transaction (BEGIN,
/// settings, query; a read-only transaction is let go rather than committed, and sqlx sends
/// its ROLLBACK with the check it makes anyway when the connection returns to the pool). A
/// page whose loads ran twice shows up here (Leptos builds a page more than once while it
/// resolves on the server; `RenderLoads` keeps that from querying again).
const PAGE: Budget = Budget { round_trips: 4, transactions: 1 };
/// The same rows from a server function called on its own (the session, then the organization
/// as read with it: the organization is in the call's body, so it can't come with the session)
/// and from the REST API with a key (the key with its organization, in one statement).
const SERVER_FUNCTION: Budget = Budget { round_trips: 5, transactions: 1 };
const REST: Budget = Budget { round_trips: 4, transactions: 1 };

struct Budget {
    round_trips: usize,
    transactions: usize,
}

impl Statements {
    /// Checks what was sent since the last call against `budget`: round trips, transactions,
    /// and that every transaction was read-only (so PostgreSQL itself refuses a write).
    fn check(&self, what: &str, budget: &Budget) {
        let sent = self.take();
        let transactions = sent.iter().filter(|s| s.starts_with("BEGIN")).count();
        let round_trips = sent.len();
        let report = sent.join("\n  ");
        println!("{what}: {round_trips} round trips in {transactions} transactions:\n  {report}");
        assert!(transactions > 0 && sent.iter().any(|s| s.starts_with("SELECT")), "{what}: the statement log is seen:\n  {report}");
        assert_eq!(round_trips, budget.round_trips, "{what}: round trips (lower the budget if fewer):\n  {report}");
        assert_eq!(transactions, budget.transactions, "{what}: transactions (lower the budget if fewer):\n  {report}");
        let writable: Vec<&String> = sent.iter().filter(|s| *s == "BEGIN").collect();
        assert!(writable.is_empty(), "{what}: only read-only transactions:\n  {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_list_takes_few_round_trips_all_read_only() {
    let statements = count_statements();
    // No job workers: their polling would be counted with the requests'.
    let app = TestApp::spawn_with(|c| c.jobs.workers = 0).await;
    let owner = app.owner_of("acme").await;
    let key =
        owner.call("create_api_key", &[("slug", "acme"), ("name", "Counting"), ("scopes[]", "projects:read"), ("expires_in_days", "1")]).await.json()
            ["key"]
            .as_str()
            .unwrap()
            .to_string();
    let rest = reqwest::Client::new();
    let rest_list = || rest.get(format!("{}/api/v1/orgs/acme/projects", app.base)).bearer_auth(&key).send();
    // The first calls after signing in may still save the session, or mark the key as used.
    assert_eq!(owner.get("/t/acme/projects").await.status, StatusCode::OK);
    assert_eq!(rest_list().await.unwrap().status(), StatusCode::OK);
    statements.take();

    // Several views: how often a render resolves its `Suspense` varies with timing, and a load
    // that runs twice does so only in some of them.
    for _ in 0..8 {
        assert_eq!(owner.get("/t/acme/projects").await.status, StatusCode::OK);
        statements.check("one page view", &PAGE);
    }
    assert_eq!(owner.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::OK);
    statements.check("one server-function call", &SERVER_FUNCTION);
    assert_eq!(rest_list().await.unwrap().status(), StatusCode::OK);
    statements.check("one REST call", &REST);
}
